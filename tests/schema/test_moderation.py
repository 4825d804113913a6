"""Player moderation through the API: removePlayer, banPlayer, unbanPlayer, bannedPlayer,
erasePlayer; the admin scope; rebuilds from the history; two instances on one set of stores.

Real Redis + MariaDB and the embedded SQLite (two instances are two apps in this process
sharing the same stores, as two processes would).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from server.app import create_app
from server.settings import Settings
from tests.support.asgi_app import BOARDS, TOKEN, subscription_to
from tests.support.cli import leaderboard
from tests.support.graphql_client import TRANSPORT_WS, GraphQLHttp, Json
from tests.support.player_traces import redis_keys_holding, tables_holding
from tests.support.shared_services import REDIS_URL

pytestmark = pytest.mark.integration

ADMIN = "test-admin-token"

REMOVE = """
mutation ($username: String!, $board: ID!, $period: String) {
  removePlayer(username: $username, board: $board, period: $period) {
    username rankingsChanged eventsDeleted
  }
}
"""
BAN = """
mutation ($username: String!, $reason: String) {
  banPlayer(username: $username, reason: $reason) { username rankingsChanged eventsDeleted }
}
"""
UNBAN = "mutation ($username: String!) { unbanPlayer(username: $username) }"
BANNED = (
    "query ($username: String!) { bannedPlayer(username: $username) { username reason bannedAt } }"
)
ERASE = """
mutation ($username: String!) {
  erasePlayer(username: $username) { username rankingsChanged eventsDeleted }
}
"""
INCREMENT = """
mutation ($username: String!, $delta: Int!, $board: ID! = "global", $eventId: String) {
  incrementScore(username: $username, delta: $delta, board: $board, eventId: $eventId) {
    score rank applied
  }
}
"""
INCREMENTS = """
mutation ($increments: [ScoreIncrement!]!) { incrementScores(increments: $increments) { score } }
"""
PROFILE = """
mutation ($username: String!, $name: String) {
  setPlayerProfile(username: $username, displayName: $name, metadata: {country: "NO"})
}
"""
NAMES = "query { topPlayers(limit: 20) { username displayName metadata } }"
TOP = """
query ($board: ID! = "global") { topPlayers(board: $board, limit: 20) { username score rank } }
"""


WATCH_CAROL = """
subscription { rankChanged(username: "carol") { username score rank previousRank } }
"""


@pytest.fixture
def setting_overrides() -> dict[str, Any]:
    """An admin token besides the write token."""
    return {"admin_token": ADMIN}


@pytest.fixture
def admin(app: Starlette, http: httpx.AsyncClient) -> GraphQLHttp:
    """A client presenting the admin token."""
    return GraphQLHttp(http, token=ADMIN)


@contextlib.asynccontextmanager
async def instance(settings: Settings) -> AsyncIterator[tuple[Starlette, GraphQLHttp]]:
    """A running app on `settings` and a client presenting the admin token."""
    application = create_app(settings)
    async with (
        application.router.lifespan_context(application),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(application), base_url="http://testserver"
        ) as client,
    ):
        yield application, GraphQLHttp(client, token=ADMIN)


def removal(username: str, rankings: int, events: int = 0) -> Json:
    return {"username": username, "rankingsChanged": rankings, "eventsDeleted": events}


async def scores(client: GraphQLHttp, board: str = "global") -> dict[str, int]:
    players = (await client.data(TOP, {"board": board}))["topPlayers"]
    return {player["username"]: player["score"] for player in players}


async def top(client: GraphQLHttp) -> list[tuple[str, int, int]]:
    players = (await client.data(TOP))["topPlayers"]
    return [(player["username"], player["score"], player["rank"]) for player in players]


async def add(client: GraphQLHttp, username: str, delta: int, **variables: Any) -> Json:
    result: Json = (
        await client.data(INCREMENT, {"username": username, "delta": delta, **variables})
    )["incrementScore"]
    return result


async def rebuild(app: Starlette, board: str = "global") -> None:
    """Rebuild the board's current period from the history, as `leaderboard rebuild` does
    (after this instance's buffer reached the history)."""
    resources = app.state.resources
    await resources.batcher.persisted_so_far()
    period = resources.service.board(board).current_period()
    await resources.recovery.rebuild(board, period)


async def test_moderation_needs_the_admin_token(admin: GraphQLHttp) -> None:
    await add(admin, "alice", 5)
    operations: list[tuple[str, Json]] = [
        (REMOVE, {"username": "alice", "board": "global"}),
        (BAN, {"username": "alice"}),
        (UNBAN, {"username": "alice"}),
        (ERASE, {"username": "alice"}),
        (BANNED, {"username": "alice"}),
    ]
    anonymous = GraphQLHttp(admin.client)
    for document, variables in operations:
        assert await anonymous.error_codes(document, variables) == ["UNAUTHENTICATED"]
        assert await admin.error_codes(document, variables, token="wrong") == ["UNAUTHENTICATED"]
        assert await admin.error_codes(document, variables, token=TOKEN) == ["FORBIDDEN"]
    assert await scores(admin) == {"alice": 5}
    assert (await admin.data(BANNED, {"username": "alice"}))["bannedPlayer"] is None


async def test_without_an_admin_token_moderation_is_forbidden(settings: Settings) -> None:
    unconfigured = settings.model_copy(update={"admin_token": ()})
    async with instance(unconfigured) as (_, client):
        for token in (None, TOKEN, ADMIN):
            codes = await client.error_codes(BAN, {"username": "alice"}, token=token)
            assert codes == ["FORBIDDEN"]


async def test_bad_input_changes_nothing(admin: GraphQLHttp) -> None:
    await add(admin, "alice", 5)
    assert await admin.error_codes(REMOVE, {"username": "a b", "board": "global"}) == [
        "BAD_USER_INPUT"
    ]
    assert await admin.error_codes(REMOVE, {"username": "alice", "board": "nope"}) == ["NOT_FOUND"]
    assert await admin.error_codes(
        REMOVE, {"username": "alice", "board": "global", "period": "2026-13"}
    ) == ["BAD_USER_INPUT"]
    assert await admin.error_codes(BAN, {"username": "", "reason": "x"}) == ["BAD_USER_INPUT"]
    for reason in ("", "x" * 513, "line\nbreak", "bidi\u202e"):
        assert await admin.error_codes(BAN, {"username": "alice", "reason": reason}) == [
            "BAD_USER_INPUT"
        ]
    assert await admin.error_codes(ERASE, {"username": "x" * 65}) == ["BAD_USER_INPUT"]
    assert await admin.error_codes(UNBAN, {"username": "a:b"}) == ["BAD_USER_INPUT"]
    assert await scores(admin) == {"alice": 5}
    assert (await admin.data(BANNED, {"username": "alice"}))["bannedPlayer"] is None
    assert (await add(admin, "alice", 1))["score"] == 6


async def test_remove_player_then_a_fresh_start_and_a_rebuild_agree(
    app: Starlette, admin: GraphQLHttp
) -> None:
    for username, delta in (("alice", 30), ("bob", 20), ("carol", 10), ("dave", 10)):
        await add(admin, username, delta)
    removed = await admin.data(REMOVE, {"username": "bob", "board": "global"})
    assert removed["removePlayer"] == removal("bob", 1)
    assert await top(admin) == [("alice", 30, 1), ("carol", 10, 2), ("dave", 10, 2)]
    # Nothing left to remove; nobody at all.
    again = await admin.data(REMOVE, {"username": "bob", "board": "global"})
    assert again["removePlayer"] == removal("bob", 0)
    nobody = await admin.data(REMOVE, {"username": "nobody", "board": "global"})
    assert nobody["removePlayer"] == removal("nobody", 0)
    await rebuild(app)
    assert await top(admin) == [("alice", 30, 1), ("carol", 10, 2), ("dave", 10, 2)]
    # Later submissions start afresh.
    assert (await add(admin, "bob", 5))["score"] == 5
    await add(admin, "bob", -5)  # present, with 0
    await admin.data(REMOVE, {"username": "carol", "board": "global"})
    expected = [("alice", 30, 1), ("dave", 10, 2), ("bob", 0, 3)]
    assert await top(admin) == expected
    await rebuild(app)
    assert await top(admin) == expected


async def test_remove_player_from_another_board_and_period(admin: GraphQLHttp) -> None:
    await add(admin, "alice", 3, board="alltime")
    await add(admin, "alice", 4)
    removed = await admin.data(REMOVE, {"username": "alice", "board": "alltime", "period": "all"})
    assert removed["removePlayer"] == removal("alice", 1)
    assert await scores(admin, "alltime") == {}
    assert await scores(admin) == {"alice": 4}
    # A past period with nobody in it: nothing to remove.
    past = await admin.data(REMOVE, {"username": "alice", "board": "global", "period": "2020-01"})
    assert past["removePlayer"] == removal("alice", 0)


async def test_ban_refuses_writes_and_unban_restores_the_history(
    app: Starlette, admin: GraphQLHttp
) -> None:
    await add(admin, "alice", 30)
    await add(admin, "bob", 20)
    await add(admin, "bob", 7, board="alltime")
    banned = await admin.data(BAN, {"username": "bob", "reason": "aimbot"})
    assert banned["banPlayer"] == removal("bob", 2)
    assert await scores(admin) == {"alice": 30}
    assert await scores(admin, "alltime") == {}
    # Every write is refused, and a batch holding one changes nothing.
    body = await admin.execute(INCREMENT, {"username": "bob", "delta": 1})
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert body["errors"][0]["message"] == "player is banned"
    batch = [
        {"username": "alice", "delta": 1, "board": "global"},
        {"username": "bob", "delta": 1, "board": "global"},
    ]
    assert await admin.error_codes(INCREMENTS, {"increments": batch}) == ["FORBIDDEN"]
    assert await scores(admin) == {"alice": 30}
    ban = (await admin.data(BANNED, {"username": "bob"}))["bannedPlayer"]
    assert ban["username"] == "bob"
    assert ban["reason"] == "aimbot"
    assert ban["bannedAt"].endswith("Z")
    # A rebuild leaves a banned player out.
    await rebuild(app)
    assert await scores(admin) == {"alice": 30}
    # Unbanned: the history comes back, writes are accepted again.
    assert (await admin.data(UNBAN, {"username": "bob"}))["unbanPlayer"] is True
    assert await scores(admin) == {"alice": 30, "bob": 20}
    assert await scores(admin, "alltime") == {"bob": 7}
    assert (await add(admin, "bob", 1))["score"] == 21
    assert (await admin.data(BANNED, {"username": "bob"}))["bannedPlayer"] is None
    assert (await admin.data(UNBAN, {"username": "bob"}))["unbanPlayer"] is False
    await rebuild(app)
    assert await scores(admin) == {"alice": 30, "bob": 21}


async def test_a_removal_before_a_ban_stays_after_the_unban(admin: GraphQLHttp) -> None:
    await add(admin, "bob", 20)
    await admin.data(REMOVE, {"username": "bob", "board": "global"})
    await add(admin, "bob", 3)
    await admin.data(BAN, {"username": "bob"})
    await admin.data(UNBAN, {"username": "bob"})
    assert await scores(admin) == {"bob": 3}
    # A ban of a player without any score anywhere takes nothing off.
    assert (await admin.data(BAN, {"username": "nobody"}))["banPlayer"] == removal("nobody", 0)


async def test_erase_player_leaves_no_trace_and_a_rebuild_brings_nothing_back(
    app: Starlette, admin: GraphQLHttp, settings: Settings
) -> None:
    name = "zed-erased"
    await add(admin, name, 5, eventId="id-1")
    await add(admin, name, 6, eventId="id-2")
    await add(admin, name, 9, board="alltime", eventId="id-3")
    await add(admin, "keeper", 4, eventId="id-4")
    await admin.data(REMOVE, {"username": name, "board": "global"})
    await add(admin, name, 2)
    await admin.data(PROFILE, {"username": name, "name": "Zed the Erased"})
    shown = (await admin.data(NAMES))["topPlayers"]  # the profile is in the cache now
    assert {
        "username": name,
        "displayName": "Zed the Erased",
        "metadata": {"country": "NO"},
    } in shown
    await admin.data(BAN, {"username": name, "reason": "requested erasure"})
    # A banned player's profile cannot change.
    assert await admin.error_codes(PROFILE, {"username": name, "name": "x"}) == ["FORBIDDEN"]
    erased = await admin.data(ERASE, {"username": name})
    # Rows: three increments, the removal, the fresh one; rankings: none (banned).
    assert erased["erasePlayer"] == removal(name, 0, 5)
    assert (await admin.data(ERASE, {"username": name}))["erasePlayer"] == removal(name, 0, 0)
    assert await tables_holding(settings.history_url, name) == {}
    if settings.redis_url:
        assert await redis_keys_holding(REDIS_URL, settings.key_prefix, name) == []
    await rebuild(app)
    await rebuild(app, "alltime")
    assert await scores(admin) == {"keeper": 4}
    assert await scores(admin, "alltime") == {}
    # Not banned any more, and its event ids are free again; the others' are not.
    assert (await admin.data(BANNED, {"username": name}))["bannedPlayer"] is None
    assert (await add(admin, "newcomer", 1, eventId="id-1"))["applied"] is True
    assert (await add(admin, "keeper", 4, eventId="id-4"))["applied"] is False


async def test_erase_takes_a_player_off_the_live_rankings(
    admin: GraphQLHttp, settings: Settings
) -> None:
    name = "zed-erased"
    await add(admin, name, 5, eventId="id-1")
    await add(admin, name, 9, board="alltime")
    erased = await admin.data(ERASE, {"username": name})
    assert erased["erasePlayer"] == removal(name, 2, 2)
    assert await scores(admin) == {}
    assert await tables_holding(settings.history_url, name) == {}
    if settings.redis_url:
        assert await redis_keys_holding(REDIS_URL, settings.key_prefix, name) == []


@pytest.mark.parametrize("backend", ["redis-mysql"])
async def test_a_ban_on_one_instance_refuses_writes_on_another_within_a_second(
    settings: Settings,
) -> None:
    # A long reload interval: only the notice can make it within the second.
    notified = settings.model_copy(update={"boards_reload_seconds": 60.0})
    async with instance(notified) as (_, a), instance(notified) as (_, b):
        await add(b, "bob", 1)
        await a.data(BAN, {"username": "bob"})
        banned = time.monotonic()
        while "errors" not in (body := await b.execute(INCREMENT, {"username": "bob", "delta": 1})):
            assert time.monotonic() - banned < 1.0, "instance B still takes the banned writes"
            await asyncio.sleep(0.01)
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        await a.data(UNBAN, {"username": "bob"})
        unbanned = time.monotonic()
        while "errors" in await b.execute(INCREMENT, {"username": "bob", "delta": 1}):
            assert time.monotonic() - unbanned < 1.0, "instance B still refuses the player"
            await asyncio.sleep(0.01)


async def test_the_periodic_reload_catches_a_lost_ban_notice(settings: Settings) -> None:
    # B listens on another notice channel (another key prefix; embedded: no notices at
    # all), as if every notice were lost: only the reload of the table brings the ban.
    a_settings = settings.model_copy(update={"boards_reload_seconds": 60.0})
    b_settings = settings.model_copy(
        update={"boards_reload_seconds": 0.3, "key_prefix": f"{settings.key_prefix}-b"}
    )
    async with instance(a_settings) as (_, a), instance(b_settings) as (_, b):
        await a.data(BAN, {"username": "bob"})
        deadline = time.monotonic() + 1.0
        while "errors" not in await b.execute(INCREMENT, {"username": "bob", "delta": 1}):
            assert time.monotonic() < deadline, "the reload did not bring the ban"
            await asyncio.sleep(0.02)


@pytest.mark.parametrize("backend", ["redis-mysql"])
async def test_a_removal_on_one_instance_reaches_a_subscriber_on_another(
    settings: Settings,
) -> None:
    # No resync within the test: only the removal's message can move the watchers.
    quiet = settings.model_copy(update={"resync_interval_seconds": 60.0})
    async with instance(quiet) as (_, a), instance(quiet) as (b_app, _):
        for username, delta in (("alice", 30), ("bob", 20), ("carol", 10)):
            await add(a, username, delta)
        async with subscription_to(b_app, TRANSPORT_WS) as subscription:
            await subscription.start(WATCH_CAROL)
            first = (await subscription.next())["data"]["rankChanged"]
            assert (first["score"], first["rank"]) == (10, 3)
            await a.data(REMOVE, {"username": "bob", "board": "global"})
            moved = (await subscription.next())["data"]["rankChanged"]
            assert moved == {"username": "carol", "score": 10, "rank": 2, "previousRank": 3}
            await subscription.start("subscription { topPlayersChanged(limit: 5) { username } }")
            listed = (await subscription.next())["data"]["topPlayersChanged"]
            assert [player["username"] for player in listed] == ["alice", "carol"]
            await a.data(REMOVE, {"username": "alice", "board": "global"})
            seen: list[Json] = [(await subscription.next())["data"] for _ in range(2)]
            assert {
                "rankChanged": {"username": "carol", "score": 10, "rank": 1, "previousRank": 2}
            } in seen
            assert {"topPlayersChanged": [{"username": "carol"}]} in seen


@pytest.mark.parametrize("backend", ["redis-mysql"])
async def test_the_rebuild_command_keeps_removals_bans_and_erasures(
    app: Starlette, admin: GraphQLHttp, settings: Settings
) -> None:
    for username, delta in (("alice", 30), ("bob", 20), ("carol", 10), ("zed-erased", 5)):
        await add(admin, username, delta, eventId=f"first-{delta}")
    await admin.data(REMOVE, {"username": "bob", "board": "global"})
    await admin.data(BAN, {"username": "carol"})
    await admin.data(ERASE, {"username": "zed-erased"})
    await app.state.resources.batcher.persisted_so_far()
    environment = {
        "LEADERBOARD_REDIS_URL": REDIS_URL,
        "LEADERBOARD_KEY_PREFIX": settings.key_prefix,
        "LEADERBOARD_DATABASE_URL": settings.history_url,
        "LEADERBOARD_WRITE_TOKEN": TOKEN,
        "LEADERBOARD_BOARDS": BOARDS,
    }
    code, output = await leaderboard(environment, "rebuild", "--board", "global")
    assert code == 0, output
    assert await top(admin) == [("alice", 30, 1)]
    assert await redis_keys_holding(REDIS_URL, settings.key_prefix, "zed-erased") == []


CREATE = """
mutation ($input: LeaderboardInput!) { createLeaderboard(input: $input) { id } }
"""
SET_SCORE = """
mutation ($username: String!, $score: Long!) {
  setScore(username: $username, score: $score, board: "lap") { score }
}
"""
TOP_LAP = """
query { topPlayers(board: "lap", limit: 20) { username score rank } }
"""


async def lap_top(client: GraphQLHttp) -> list[tuple[str, int, int]]:
    players = (await client.data(TOP_LAP))["topPlayers"]
    return [(player["username"], player["score"], player["rank"]) for player in players]


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        # BEST, high first: bob's 50 is kept; after the removal his worse 10 counts.
        (
            {"updateRule": "BEST"},
            [
                [("zed-erased", 40, 1), ("alice", 30, 2)],
                [("zed-erased", 40, 1), ("alice", 30, 2), ("bob", 10, 3)],
            ],
        ),
        # LATEST, low first, equal scores by who got there first (bob's 30 came later).
        (
            {"updateRule": "LATEST", "sortOrder": "ASC", "tieBreak": "EARLIEST"},
            [
                [("alice", 30, 1), ("zed-erased", 40, 2)],
                [("bob", 10, 1), ("alice", 30, 2), ("zed-erased", 40, 3)],
            ],
        ),
    ],
    ids=["best-desc-shared", "latest-asc-earliest"],
)
async def test_moderation_on_boards_keeping_scores_otherwise(
    app: Starlette,
    admin: GraphQLHttp,
    settings: Settings,
    kind: Json,
    expected: list[list[tuple[str, int, int]]],
) -> None:
    """removePlayer, ban, unban and erase on BEST/LATEST/ASC/EARLIEST boards, each kept by a
    rebuild from the history (the removal row replayed where it was made)."""
    await admin.data(CREATE, {"input": {"id": "lap", "reset": "NEVER", **kind}})
    for username, score in (("alice", 30), ("bob", 50), ("bob", 30), ("zed-erased", 40)):
        await admin.data(SET_SCORE, {"username": username, "score": score})
    removed = await admin.data(REMOVE, {"username": "bob", "board": "lap"})
    assert removed["removePlayer"] == removal("bob", 1)
    after_removal, after_fresh_start = expected
    assert await lap_top(admin) == after_removal
    await rebuild(app, "lap")
    assert await lap_top(admin) == after_removal
    # Later submissions start afresh: a worse BEST score counts now.
    await admin.data(SET_SCORE, {"username": "bob", "score": 10})
    now = await lap_top(admin)
    assert now == after_fresh_start
    await rebuild(app, "lap")
    assert await lap_top(admin) == now
    # A ban takes bob off, an unban puts back what the history holds (after the removal).
    banned = await admin.data(BAN, {"username": "bob"})
    assert banned["banPlayer"] == removal("bob", 1)
    assert [entry[0] for entry in await lap_top(admin)] == [
        name for name, _, _ in now if name != "bob"
    ]
    body = await admin.execute(SET_SCORE, {"username": "bob", "score": 99})
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    await rebuild(app, "lap")
    assert "bob" not in {entry[0] for entry in await lap_top(admin)}
    assert (await admin.data(UNBAN, {"username": "bob"}))["unbanPlayer"] is True
    assert await lap_top(admin) == now
    erased = await admin.data(ERASE, {"username": "zed-erased"})
    assert erased["erasePlayer"] == removal("zed-erased", 1, 1)
    assert "zed-erased" not in {entry[0] for entry in await lap_top(admin)}
    await rebuild(app, "lap")
    assert "zed-erased" not in {entry[0] for entry in await lap_top(admin)}
    assert await tables_holding(settings.history_url, "zed-erased") == {}
    if settings.redis_url:
        assert await redis_keys_holding(REDIS_URL, settings.key_prefix, "zed-erased") == []
