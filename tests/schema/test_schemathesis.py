"""Schemathesis fuzzes every query and mutation of the running app's schema, on both backends.

The schema is read from the app itself (introspection), Schemathesis generates documents for
each root field, valid ones (positive) and invalid ones (negative), and each is sent over HTTP,
mostly as a POST with the write token, sometimes as a GET, without a token or with a wrong one.
Every answer must be:

- never a 5xx, always a JSON object;
- every error coded by the contract, and never UNAVAILABLE: the stores are up, so that code
  could only be an unexpected exception the schema masked (the crash is in the log);
- a mutation without a valid token applies nothing; one that failed changed nothing (the
  boards' top lists and player counts are compared before and after).

Random strings seldom hit a configured board or a well-formed period, so most of the
arguments that the rules care about (board, period, username, eventId, limit, offset, radius,
delta) are replaced by values near the rules' edges; otherwise the deep paths would never run.

The admin operations (createLeaderboard, updateLeaderboard, archiveLeaderboard, and the
moderation ones: removePlayer, banPlayer, unbanPlayer, erasePlayer, bannedPlayer) are reached
with the admin token (configured here); a write token on them must be refused too. Their
`id` is steered to a declared board kept for them (`scratch`) or to fresh ids, so that the
boards the other operations write to are never archived under them.

The player operations of #14 (players, ranking, setPlayerProfile) get their lists, cursors,
display names and metadata steered the same way; the snapshot holds every shown profile, so
a refused setPlayerProfile must leave them as they were.

`LEADERBOARD_SCHEMATHESIS_EXAMPLES` (default 100) is the number of examples per operation and
generation mode (a quarter of that for the 4 board operations, the 3 player operations and
the 5 moderation ones): 7 x 2 x 100 + 12 x 2 x 25 = 2,000 documents per backend. setScore
is steered to the BEST and LATEST boards created at the start (`SET_BOARDS`), the other
writes to the declared INCREMENT ones.
"""

from __future__ import annotations

import asyncio
import os
import string
from collections import Counter
from collections.abc import Awaitable
from datetime import date
from typing import Any, TypeVar

import graphql
import httpx
import hypothesis
import pytest
import schemathesis
import schemathesis.graphql
from hypothesis import strategies as st
from schemathesis.core.result import Ok

from server.settings import Settings
from tests.support.asgi_app import TOKEN
from tests.support.graphql_client import Json

pytestmark = pytest.mark.integration

EXAMPLES = int(os.environ.get("LEADERBOARD_SCHEMATHESIS_EXAMPLES", "100"))
BOARD_EXAMPLES = max(10, EXAMPLES // 4)
"""Examples of the board operations (the four `leaderboard` ones): fewer, to keep the test
within its time limit; each of their valid documents reaches the deep paths."""
CODES = {"BAD_USER_INPUT", "UNAUTHENTICATED", "NOT_FOUND", "UNAVAILABLE", "FORBIDDEN"}
ADMIN = "schemathesis-admin-token"
MODERATION_OPERATIONS = {
    "Mutation.removePlayer",
    "Mutation.banPlayer",
    "Mutation.unbanPlayer",
    "Mutation.erasePlayer",
    "Query.bannedPlayer",
}
ADMIN_OPERATIONS = {
    "Mutation.createLeaderboard",
    "Mutation.updateLeaderboard",
    "Mutation.archiveLeaderboard",
    *MODERATION_OPERATIONS,
}
FEWER_EXAMPLES = {
    "Query.leaderboard",
    "Query.players",
    "Query.ranking",
    "Mutation.setPlayerProfile",
}
SCRATCH = "scratch"
"""A declared board only the admin operations touch (archived, capped at will)."""
RESETS = {"global": "monthly", "daily-race": "daily", "weekly-cup": "weekly", "alltime": "never"}
"""The boards of the fuzzed app (one of each reset period) and how each resets."""
SET_BOARDS = {
    "best-lap": (
        "daily",
        '{id: "best-lap", reset: DAILY, updateRule: BEST, sortOrder: ASC, '
        "tieBreak: EARLIEST, minScore: 0, maxScore: 1000000}",
    ),
    "latest-rating": ("monthly", '{id: "latest-rating", updateRule: LATEST}'),
}
"""Boards setScore serves, created at run time before the fuzzing (board -> reset, input)."""

T = TypeVar("T")

INTROSPECTION = graphql.get_introspection_query()

_TOPS = " ".join(
    f'b{index}: topPlayers(board: "{board}", limit: 100) '
    "{ username score rank displayName metadata }"
    for index, board in enumerate([*RESETS, *SET_BOARDS])
)
SNAPSHOT = (
    f"{{ leaderboards {{ id playerCount active timeZone minScore maxScore maxDelta }} {_TOPS} }}"
)
"""Every board's settings and player count, and the top 100 of the fuzzed boards."""


def period_id(reset: str, day: date) -> str:
    """The id of the period of a board with this reset that holds `day`."""
    year, week, _ = day.isocalendar()
    return {
        "daily": f"{day.year:04d}-{day.month:02d}-{day.day:02d}",
        "weekly": f"{year:04d}-W{week:02d}",
        "monthly": f"{day.year:04d}-{day.month:02d}",
        "never": "all",
    }[reset]


_DAYS = st.dates() | st.sampled_from(
    [date.min, date.max, date(1970, 1, 1), date(9999, 12, 1), date.today()]
)


def periods(board: str) -> st.SearchStrategy[str]:
    """Well-formed period ids of a board (the global board's for an unknown one)."""
    reset = RESETS.get(board) or SET_BOARDS.get(board, ("monthly", ""))[0]
    return _DAYS.map(lambda day: period_id(reset, day))


_NAME_CHARS = string.ascii_letters + string.digits + "_-."
_VALID_NAMES = st.sampled_from(["ana", "bo", "Jörg", "名人", "x" * 64]) | st.text(
    _NAME_CHARS, min_size=1, max_size=64
)
_VALID_EVENT_IDS = st.sampled_from(["e1", "e2", "match-9:kill-3", "a" * 128]) | st.text(
    _NAME_CHARS + ":", min_size=1, max_size=128
)


class EnumLiteral(str):
    """An enum value to steer an argument to (written unquoted)."""


def _enums(*values: str) -> st.SearchStrategy[EnumLiteral]:
    return st.sampled_from([EnumLiteral(value) for value in values])


_ZONES = st.sampled_from(["UTC", "Europe/Paris", "America/New_York", "Pacific/Kiritimati"])
_BOARD_IDS = st.just(SCRATCH) | st.text(_NAME_CHARS, min_size=1, max_size=64)
_FRESH_IDS = st.text(_NAME_CHARS, min_size=1, max_size=64).filter(lambda name: name != SCRATCH)
_MAX_EXACT = 2**53 - 1
_SEQUENCES = st.integers(0, 5) | st.integers(0, _MAX_EXACT)

Literal = str | int | bool | list[Any] | dict[str, Any] | None
_DEEP = {"a": {"b": {"c": {"d": {"e": 1}}}}}
VALID: dict[str, st.SearchStrategy[Literal]] = {
    "usernames": st.lists(_VALID_NAMES, min_size=1, max_size=100, unique=True),
    "first": st.integers(1, 100),
    "after": st.none(),
    "fill": st.booleans(),
    "displayName": st.none()
    | st.sampled_from(["", "Ana", "\U0001f468\u200d\U0001f469 fam", "<b>x</b>"])
    | st.text(string.ascii_letters + " ", min_size=1, max_size=64).filter(str.strip),
    "metadata": st.none() | st.sampled_from([{}, {"country": "FR"}, {"a": [1, {"b": None}]}]),
    "id": _BOARD_IDS,
    "timeZone": _ZONES,
    "reset": _enums("NEVER", "DAILY", "WEEKLY", "MONTHLY"),
    "updateRule": _enums("INCREMENT"),
    "sortOrder": _enums("DESC"),
    "tieBreak": _enums("SHARED"),
    "minScore": st.none(),
    "maxScore": st.none(),
    "maxDelta": st.none() | st.integers(1, 1_000_000),
    "username": _VALID_NAMES,
    "eventId": st.none() | _VALID_EVENT_IDS,
    "limit": st.integers(1, 100),
    "offset": st.integers(0, 200),
    "radius": st.integers(0, 50),
    "delta": st.integers(-1_000_000, -1) | st.integers(1, 1_000_000) | st.integers(1, 5),
    "score": st.integers(0, 1_000_000) | st.integers(0, 5),
    "reason": st.none() | st.sampled_from(["cheating", "Betrug 🎯", "x" * 512]),
}
"""Values every rule accepts, per argument (or input field) name; boards and periods apart."""
EDGY: dict[str, st.SearchStrategy[Literal]] = {
    "usernames": st.lists(st.sampled_from(["ana", "", "a b", "x" * 65]), max_size=102),
    "first": st.integers(-1, 101),
    "after": st.none() | st.text(max_size=40) | st.sampled_from(["", "WzEsMiwzXQ", "A" * 600]),
    "fill": st.booleans(),
    "displayName": st.text(max_size=70)
    | st.sampled_from(["\u202eevil", "a\nb", " ", "x" * 65, "\u0000"]),
    "metadata": st.sampled_from([[1], "x", 3, _DEEP, {"blob": "x" * 1100}, {}]),
    "id": _BOARD_IDS | st.sampled_from(["", "global", "x" * 65, "a b"]) | st.text(max_size=70),
    "timeZone": _ZONES
    | st.sampled_from(["", "utc", "Mars/Olympus", "../etc/passwd", "Europe/Paris\u0000", "x" * 65])
    | st.text(max_size=70),
    "updateRule": _enums("INCREMENT", "BEST", "LATEST"),
    "sortOrder": _enums("DESC", "ASC"),
    "tieBreak": _enums("SHARED", "EARLIEST"),
    "minScore": st.none() | st.integers(-_MAX_EXACT, _MAX_EXACT),
    "maxScore": st.none() | st.integers(-_MAX_EXACT, _MAX_EXACT),
    "maxDelta": st.none() | st.integers(-2, 2) | st.sampled_from([_MAX_EXACT, _MAX_EXACT + 1]),
    "username": st.one_of(
        _VALID_NAMES,
        st.sampled_from(["", "x" * 65, "a b", "e\u0301", "ana\u0000", "ana\n"]),
        st.text(min_size=0, max_size=70),
    ),
    "eventId": st.one_of(
        _VALID_EVENT_IDS, st.sampled_from(["", "~abc", "a" * 129]), st.text(max_size=130)
    ),
    "limit": st.integers(-1, 101),
    "offset": st.integers(-1, 200) | st.just(2**31 - 1),
    "radius": st.integers(-1, 51),
    "delta": st.integers(-1_000_001, 1_000_001) | st.integers(-2, 2),
    "score": st.integers(-2, 1_000_001)
    | st.sampled_from([_MAX_EXACT, -_MAX_EXACT, _MAX_EXACT + 1, -(_MAX_EXACT + 1)]),
    "writerId": st.one_of(
        st.none(),
        _VALID_EVENT_IDS,
        st.sampled_from(["", "~w", "a" * 129, "a b"]),
        st.text(max_size=130),
    ),
    "sequence": st.none() | _SEQUENCES | st.sampled_from([-1, _MAX_EXACT + 1, -(_MAX_EXACT + 1)]),
    "reason": st.one_of(
        st.none(),
        st.sampled_from(["", "x" * 513, "a\u0000b", "bidi\u202e", "tab\t"]),
        st.text(max_size=600),
    ),
}
"""Values on both sides of the rules, and odd ones."""
_EDGY_BOARDS = st.sampled_from([*RESETS, *SET_BOARDS]) | st.sampled_from(
    ["", "Global", "global ", "x" * 65]
)
_ODD_PERIODS = st.one_of(
    st.sampled_from(["all", "", "2026-13", "2026-W00", "2026-W53", "2026-02-29", "2024-02-29"]),
    _DAYS.flatmap(lambda day: st.sampled_from([period_id(r, day) for r in RESETS.values()])),
    st.from_regex(r"-?[0-9]{1,5}-W?[0-9]{1,3}(-[0-9]{1,3})?", fullmatch=True),
)


def steer(document: str, data: st.DataObject, *, admin: bool = False) -> str:
    """The document with the literal arguments (and input fields) the rules care about replaced:
    all by valid values (a third of the documents), about half by values near the rules' edges
    (another third), or none. One board per document, so that periods can be made for it."""
    # The board operations' examples are fewer: more of them are steered to valid values.
    intents = ["valid", "valid", "edgy", "raw"] if admin else ["valid", "edgy", "raw"]
    intent = data.draw(st.sampled_from(intents), label="steering")
    if intent == "raw":
        return document
    valid = intent == "valid"
    # setScore takes BEST/LATEST boards, the other writes INCREMENT ones (a valid document
    # for either names a board of its kind).
    kind = list(SET_BOARDS) if "setScore" in document else list(RESETS)
    board = data.draw(st.sampled_from(kind) if valid else _EDGY_BOARDS, label="board")
    strategies: dict[str, st.SearchStrategy[Literal]] = {
        **(VALID if valid else EDGY),
        "board": st.just(board),
        "period": st.none() | periods(board) if valid else periods(board) | _ODD_PERIODS,
    }
    if valid and "createLeaderboard" in document:
        strategies["id"] = _FRESH_IDS
    if valid:
        # A writer's id and sequence go together (or neither): drawn as one pair.
        writer = data.draw(st.none() | st.tuples(_VALID_EVENT_IDS, _SEQUENCES), label="writer")
        strategies["writerId"] = st.just(None if writer is None else writer[0])
        strategies["sequence"] = st.just(None if writer is None else writer[1])

    class Steer(graphql.Visitor):
        def enter_argument(self, node: graphql.ArgumentNode, *_: Any) -> Any:
            return self._steered(node)

        def enter_object_field(self, node: graphql.ObjectFieldNode, *_: Any) -> Any:
            return self._steered(node)

        def _steered(self, node: graphql.ArgumentNode | graphql.ObjectFieldNode) -> Any:
            name = node.name.value
            if name not in strategies or isinstance(node.value, graphql.VariableNode):
                return None
            if not valid and not data.draw(st.booleans(), label=f"steer {name}"):
                return None
            value = data.draw(strategies[name], label=name)
            return type(node)(name=node.name, value=_literal(value))

    return graphql.print_ast(graphql.visit(graphql.parse(document), Steer()))


def _literal(value: Literal) -> graphql.ValueNode:
    """A GraphQL literal of a steered value (lists and objects for usernames and metadata)."""
    if value is None:
        return graphql.NullValueNode()
    if isinstance(value, EnumLiteral):
        return graphql.EnumValueNode(value=str(value))
    if isinstance(value, bool):
        return graphql.BooleanValueNode(value=value)
    if isinstance(value, int):
        return graphql.IntValueNode(value=str(value))
    if isinstance(value, list):
        return graphql.ListValueNode(values=tuple(_literal(item) for item in value))
    if isinstance(value, dict):
        return graphql.ObjectValueNode(
            fields=tuple(
                graphql.ObjectFieldNode(name=graphql.NameNode(value=key), value=_literal(item))
                for key, item in value.items()
            )
        )
    return graphql.StringValueNode(value=value)


@pytest.fixture
def setting_overrides() -> dict[str, Any]:
    """A board of each reset period, the admin operations' board, and an admin token."""
    boards = [f"{board}:{reset}" for board, reset in RESETS.items()] + [f"{SCRATCH}:monthly"]
    return {"LEADERBOARD_BOARDS": ",".join(boards), "admin_token": ADMIN}


class Fuzzer:
    """Sends generated cases to the app (running on the test's event loop) from a worker thread,
    and checks each answer."""

    def __init__(self, http: httpx.AsyncClient, loop: asyncio.AbstractEventLoop) -> None:
        self.http = http
        self.loop = loop
        self.outcomes: Counter[tuple[str, str]] = Counter()

    def run(self, awaitable: Awaitable[T]) -> T:
        async def wrapped() -> T:
            return await awaitable

        return asyncio.run_coroutine_threadsafe(wrapped(), self.loop).result(timeout=30)

    def send(self, document: str, *, method: str, token: str | None) -> httpx.Response:
        headers = {"X-Internal-Token": token} if token is not None else {}
        if method == "GET":
            request = self.http.get("/graphql", params={"query": document}, headers=headers)
        else:
            request = self.http.post("/graphql", json={"query": document}, headers=headers)
        return self.run(request)

    def snapshot(self) -> Json:
        body = self.checked(self.send(SNAPSHOT, method="POST", token=None), "snapshot")
        assert "errors" not in body, body
        data: Json = body["data"]
        return data

    def checked(self, response: httpx.Response, label: str) -> Json:
        """The JSON body, after the checks every answer must pass."""
        context = f"{label}: {response.status_code} {response.text[:2000]}"
        assert response.status_code < 500, context
        assert response.headers.get("content-type", "").startswith("application/json"), context
        body = response.json()
        assert isinstance(body, dict), context
        errors = body.get("errors")
        if errors is None:
            assert isinstance(body.get("data"), dict), context
            return body
        assert isinstance(errors, list), context
        assert errors, context
        for error in errors:
            assert isinstance(error, dict), context
            assert isinstance(error.get("message"), str), context
            code = (error.get("extensions") or {}).get("code")
            assert code in CODES, f"error without a contract code; {context}"
            assert code != "UNAVAILABLE", f"an unexpected exception (see the log); {context}"
        return body

    def exercise(self, operation: Any, mode: schemathesis.GenerationMode) -> None:
        """Generate and send this operation's cases; hypothesis shrinks any failure."""
        is_mutation = not operation.definition.is_query
        label = operation.label
        is_admin = label in ADMIN_OPERATIONS
        # Fewer examples for the board operations and the player operations of #14.
        is_board = is_admin or label in FEWER_EXAMPLES
        examples = BOARD_EXAMPLES if is_board else EXAMPLES
        # The admin operations mostly get the admin token, the others mostly the write token.
        tokens: list[str | None] = [ADMIN, ADMIN, TOKEN, None, "wrong"]
        if not is_admin:
            tokens = [TOKEN, TOKEN, TOKEN, ADMIN, None, "wrong"]

        @hypothesis.settings(
            max_examples=examples,
            deadline=None,
            database=None,
            derandomize=False,
            suppress_health_check=list(hypothesis.HealthCheck),
            phases=[hypothesis.Phase.generate, hypothesis.Phase.shrink],
        )
        @hypothesis.given(case=operation.as_strategy(mode), data=st.data())
        def one(case: Any, data: st.DataObject) -> None:
            document = steer(case.body, data, admin=is_board) if mode.is_positive else case.body
            method = data.draw(st.sampled_from(["POST", "POST", "POST", "GET"]), label="method")
            token = data.draw(st.sampled_from(tokens), label="token")
            before = self.snapshot() if is_mutation else None
            response = self.send(document, method=method, token=token)
            if is_mutation and method == "GET":
                # Strawberry refuses mutations over GET (a link or an <img> must not write).
                assert response.status_code in (400, 405), response.text
            body = self.checked(response, f"{label} {method} token={token!r}\n{document}")
            failed = "errors" in body or response.status_code >= 400
            # A mutation that ran but one of whose selected subfields failed (a bad `period`
            # of `playerCount` under createLeaderboard) has done its work: GraphQL runs the
            # root field first. Only a refusal of the root field must change nothing.
            refused = response.status_code >= 400 or any(
                len(error.get("path") or ()) <= 1 for error in body.get("errors", ())
            )
            self.outcomes[(label, "refused" if failed else "accepted")] += 1
            if is_mutation and token not in (TOKEN, ADMIN):
                assert failed, f"a write without a valid token was accepted: {body}"
            if is_admin and token != ADMIN:
                assert failed, f"an admin operation without the admin token was accepted: {body}"
            if is_mutation and refused:
                assert self.snapshot() == before, f"a refused mutation changed state: {document}"

        one()


@pytest.mark.parametrize("mode", ["positive", "negative"])
async def test_fuzzed_operations_never_crash_and_refusals_change_nothing(
    http: httpx.AsyncClient, settings: Settings, mode: str
) -> None:
    response = await http.post("/graphql", json={"query": INTROSPECTION})
    assert response.status_code == 200
    schema = schemathesis.graphql.from_dict(response.json()["data"])
    fuzzer = Fuzzer(http, asyncio.get_running_loop())
    for _, board_input in SET_BOARDS.values():
        created = await http.post(
            "/graphql",
            json={"query": f"mutation {{ createLeaderboard(input: {board_input}) {{ id }} }}"},
            headers={"X-Internal-Token": ADMIN},
        )
        assert "errors" not in created.json(), created.text
    generation_mode = schemathesis.GenerationMode(mode)
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operations.append(result.ok())
    assert {operation.label for operation in operations} >= {
        "Query.topPlayers",
        "Query.player",
        "Query.neighborhood",
        "Query.leaderboards",
        "Mutation.incrementScore",
        "Mutation.incrementScores",
        "Mutation.setScore",
        "Query.leaderboard",
        *ADMIN_OPERATIONS,
        *FEWER_EXAMPLES,
    }
    for operation in operations:
        await asyncio.to_thread(fuzzer.exercise, operation, generation_mode)
    if generation_mode.is_positive:
        # The steering works: valid documents got through on every operation.
        for operation in operations:
            assert fuzzer.outcomes[(operation.label, "accepted")] > 0, fuzzer.outcomes


EDGE_DAYS = [date.min, date(1, 1, 7), date(1970, 1, 1), date(9999, 11, 15), date(9999, 12, 25)]
EDGE_DAYS += [date.max]


@pytest.mark.parametrize("board", list(RESETS))
async def test_edge_periods_never_crash(http: httpx.AsyncClient, board: str) -> None:
    """The first and last days a date can hold, in every board's period format: BAD_USER_INPUT
    at worst, never an unexpected error; an ordinary past period is served. (One field per
    document: an error that nulls the data cancels the fields still running.)"""
    fuzzer = Fuzzer(http, asyncio.get_running_loop())
    for day in EDGE_DAYS:
        for reset in RESETS.values():
            period = period_id(reset, day)
            where = f'board: "{board}", period: "{period}"'
            for document in (
                f"{{ topPlayers({where}) {{ rank }} }}",
                f'{{ player(username: "ana", {where}) {{ rank }} }}',
                f'{{ neighborhood(username: "ana", {where}) {{ rank }} }}',
                f'{{ leaderboards {{ id playerCount(period: "{period}") }} }}',
            ):
                response = await http.post("/graphql", json={"query": document})
                body = fuzzer.checked(response, document)
                if reset == RESETS[board] and day.year == 1970 and "topPlayers" in document:
                    assert body == {"data": {"topPlayers": []}}
