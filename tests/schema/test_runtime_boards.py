"""Boards created at run time, the admin scope, caps and archiving, on both backends.

Real Redis + MariaDB and the embedded SQLite; two instances are two apps in this process
sharing the same stores (as two processes would).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from starlette.applications import Starlette

from server.app import create_app
from server.settings import Settings
from store.board_registry import BoardConflict
from tests.support.asgi_app import TOKEN, subscription_to
from tests.support.graphql_client import TRANSPORT_WS, GraphQLHttp, Json

pytestmark = pytest.mark.integration

ADMIN = "test-admin-token"
MAX_EXACT = 2**53 - 1

CREATE = """
mutation ($input: LeaderboardInput!) {
  createLeaderboard(input: $input) {
    id reset currentPeriod updateRule sortOrder tieBreak timeZone
    minScore maxScore maxDelta active playerCount
  }
}
"""
BOARD = """
query ($id: ID!) {
  leaderboard(id: $id) {
    id reset currentPeriod updateRule sortOrder tieBreak timeZone
    minScore maxScore maxDelta active playerCount
  }
}
"""
UPDATE = """
mutation ($id: ID!, $minScore: Long, $maxScore: Long, $maxDelta: Long) {
  updateLeaderboard(id: $id, minScore: $minScore, maxScore: $maxScore, maxDelta: $maxDelta) {
    id maxDelta minScore maxScore active
  }
}
"""
ARCHIVE = "mutation ($id: ID!) { archiveLeaderboard(id: $id) { id active } }"
INCREMENT = """
mutation ($username: String!, $delta: Int!, $board: ID!) {
  incrementScore(username: $username, delta: $delta, board: $board) { score period }
}
"""
# `__typename` keeps this on Strawberry's path; INCREMENT (plain) takes the fast path:
# the caps and the archive hold on both.
INCREMENTS = """
mutation ($increments: [ScoreIncrement!]!) {
  incrementScores(increments: $increments) { score __typename }
}
"""
TOP = "query ($board: ID!) { topPlayers(board: $board) { username score } }"
STATE = "{ leaderboards { id reset timeZone maxDelta active playerCount } }"


@pytest.fixture
def setting_overrides() -> dict[str, Any]:
    """An admin token besides the write token."""
    return {"admin_token": f"{ADMIN}, rotated-admin-token"}


@contextlib.asynccontextmanager
async def instance(settings: Settings) -> AsyncIterator[GraphQLHttp]:
    """A running app on `settings` and a client presenting the admin token."""
    application = create_app(settings)
    async with (
        application.router.lifespan_context(application),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(application), base_url="http://testserver"
        ) as client,
    ):
        yield GraphQLHttp(client, token=ADMIN)


@pytest.fixture
def admin(app: Starlette, http: httpx.AsyncClient) -> GraphQLHttp:
    """A client presenting the admin token."""
    return GraphQLHttp(http, token=ADMIN)


def race(**fields: Any) -> Json:
    """createLeaderboard's variables for a daily board `race` (plus `fields`)."""
    return {"input": {"id": "race", "reset": "DAILY", **fields}}


async def test_admin_operations_need_the_admin_token(admin: GraphQLHttp) -> None:
    before = await admin.data(STATE)
    anonymous = GraphQLHttp(admin.client)
    assert await anonymous.error_codes(CREATE, race()) == ["UNAUTHENTICATED"]
    assert await admin.error_codes(CREATE, race(), token="wrong") == ["UNAUTHENTICATED"]
    bearer = await admin.client.post(
        "/graphql",
        json={"query": CREATE, "variables": race()},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert bearer.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert await admin.error_codes(CREATE, race(), token=TOKEN) == ["FORBIDDEN"]
    assert await admin.error_codes(ARCHIVE, {"id": "global"}, token=TOKEN) == ["FORBIDDEN"]
    assert await admin.error_codes(UPDATE, {"id": "global"}, token="wrong") == ["UNAUTHENTICATED"]
    assert await admin.data(STATE) == before
    # Both admin tokens (rotation) work, and an admin token may write.
    created = await admin.data(CREATE, race(), token="rotated-admin-token")
    assert created["createLeaderboard"]["id"] == "race"
    written = await admin.data(INCREMENT, {"username": "ana", "delta": 3, "board": "race"})
    assert written["incrementScore"]["score"] == 3


async def test_without_an_admin_token_admin_operations_are_forbidden(
    settings: Settings,
) -> None:
    unconfigured = settings.model_copy(update={"admin_token": ()})
    async with instance(unconfigured) as client:
        for token in (None, TOKEN, ADMIN, "anything"):
            assert await client.error_codes(CREATE, race(), token=token) == ["FORBIDDEN"]
        # Reads of boards stay open.
        assert (await client.data(BOARD, {"id": "global"}))["leaderboard"]["active"] is True


async def test_create_serves_the_board_with_the_contract_fields(admin: GraphQLHttp) -> None:
    zone = "Pacific/Kiritimati"  # UTC+14: its date differs from UTC's for 14 hours a day
    created = (await admin.data(CREATE, race(timeZone=zone, maxDelta=100)))["createLeaderboard"]
    local_day = datetime.now(ZoneInfo(zone)).date().isoformat()
    assert created == {
        "id": "race",
        "reset": "DAILY",
        "currentPeriod": local_day,
        "updateRule": "INCREMENT",
        "sortOrder": "DESC",
        "tieBreak": "SHARED",
        "timeZone": zone,
        "minScore": None,
        "maxScore": None,
        "maxDelta": 100,
        "active": True,
        "playerCount": 0,
    }
    assert (await admin.data(BOARD, {"id": "race"}))["leaderboard"] == created
    written = await admin.data(INCREMENT, {"username": "ana", "delta": 100, "board": "race"})
    assert written["incrementScore"] == {"score": 100, "period": local_day}
    defaults = (await admin.data(CREATE, {"input": {"id": "plain"}}))["createLeaderboard"]
    assert defaults["reset"] == "MONTHLY"
    assert defaults["timeZone"] == "UTC"
    assert defaults["currentPeriod"] == datetime.now(UTC).strftime("%Y-%m")
    assert await admin.error_codes(BOARD, {"id": "nope"}) == ["NOT_FOUND"]


async def test_max_delta_refuses_the_whole_batch(admin: GraphQLHttp) -> None:
    await admin.data(CREATE, race(maxDelta=10))
    refused = await admin.error_codes(INCREMENT, {"username": "ana", "delta": 11, "board": "race"})
    assert refused == ["BAD_USER_INPUT"]
    batch = [
        {"username": "bo", "delta": 5, "board": "race"},
        {"username": "ana", "delta": 2, "board": "global"},
        {"username": "ana", "delta": -11, "board": "race"},
    ]
    assert await admin.error_codes(INCREMENTS, {"increments": batch}) == ["BAD_USER_INPUT"]
    for board in ("race", "global"):
        assert (await admin.data(TOP, {"board": board}))["topPlayers"] == []
    # Raising the cap takes effect at once; the other boards keep the service's bound.
    await admin.data(UPDATE, {"id": "race", "maxDelta": 20})
    await admin.data(INCREMENTS, {"increments": batch})
    assert (await admin.data(TOP, {"board": "race"}))["topPlayers"] == [
        {"username": "bo", "score": 5},
        {"username": "ana", "score": -11},
    ]


async def test_archive_refuses_writes_and_keeps_reads(admin: GraphQLHttp) -> None:
    await admin.data(CREATE, race())
    await admin.data(INCREMENT, {"username": "ana", "delta": 4, "board": "race"})
    archived = await admin.data(ARCHIVE, {"id": "race"})
    assert archived["archiveLeaderboard"] == {"id": "race", "active": False}
    body = await admin.execute(INCREMENT, {"username": "ana", "delta": 1, "board": "race"})
    assert [error["extensions"]["code"] for error in body["errors"]] == ["FORBIDDEN"]
    assert "archived" in body["errors"][0]["message"]
    batch = [{"username": "bo", "delta": 1}, {"username": "bo", "delta": 1, "board": "race"}]
    assert await admin.error_codes(INCREMENTS, {"increments": batch}) == ["FORBIDDEN"]
    assert (await admin.data(TOP, {"board": "global"}))["topPlayers"] == []
    assert (await admin.data(TOP, {"board": "race"}))["topPlayers"] == [
        {"username": "ana", "score": 4}
    ]
    assert (await admin.data(BOARD, {"id": "race"}))["leaderboard"]["active"] is False
    assert await admin.error_codes(ARCHIVE, {"id": "nope"}) == ["NOT_FOUND"]


@pytest.mark.parametrize(
    ("variables", "words"),
    [
        (race(updateRule="SOMETIMES"), "SOMETIMES"),
        (race(updateRule="BEST", maxDelta=5), "maxDelta applies to INCREMENT boards only"),
        (race(timeZone="Mars/Olympus"), "time zone"),
        (race(timeZone="../../etc/passwd"), "time zone"),
        (race(minScore=10, maxScore=9), "minScore (10)"),
        (race(maxScore=MAX_EXACT + 1), "Long"),
        (race(maxDelta=-(MAX_EXACT + 1)), "Long"),
        (race(maxDelta=0), "maxDelta"),
        ({"input": {"id": "not a valid id"}}, "id must be"),
        ({"input": {"id": "global"}}, "exists"),
    ],
)
async def test_bad_input_changes_nothing(admin: GraphQLHttp, variables: Json, words: str) -> None:
    before = await admin.data(STATE)
    body = await admin.execute(CREATE, variables)
    assert [error["extensions"]["code"] for error in body["errors"]] == ["BAD_USER_INPUT"]
    assert words in body["errors"][0]["message"]
    assert await admin.data(STATE) == before


async def test_update_refuses_bad_caps_and_unknown_boards(admin: GraphQLHttp) -> None:
    await admin.data(CREATE, race(maxDelta=10))
    before = await admin.data(STATE)
    for variables in (
        {"id": "race", "minScore": 10, "maxScore": 9},
        {"id": "race", "maxDelta": 0},
        {"id": "race", "maxScore": MAX_EXACT + 1},
    ):
        assert await admin.error_codes(UPDATE, variables) == ["BAD_USER_INPUT"]
    assert await admin.error_codes(UPDATE, {"id": "nope", "maxDelta": 5}) == ["NOT_FOUND"]
    assert await admin.data(STATE) == before


async def test_the_number_of_boards_is_bounded(settings: Settings) -> None:
    bounded = settings.model_copy(update={"max_boards": 4})  # 3 declared
    async with instance(bounded) as client:
        await client.data(CREATE, race())
        body = await client.execute(CREATE, {"input": {"id": "one-too-many"}})
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        assert "LEADERBOARD_MAX_BOARDS" in body["errors"][0]["message"]


async def test_boards_survive_a_restart(settings: Settings) -> None:
    async with instance(settings) as client:
        created = await client.data(CREATE, race(timeZone="America/New_York", maxDelta=7))
        await client.data(ARCHIVE, {"id": "race"})
    async with instance(settings) as client:
        board = (await client.data(BOARD, {"id": "race"}))["leaderboard"]
        expected = created["createLeaderboard"] | {"active": False}
        assert board == expected


async def test_a_declared_board_that_differs_from_the_stored_one_stops_the_start(
    settings: Settings,
) -> None:
    async with instance(settings) as client:
        await client.data(CREATE, race())
    for spec in ("race:weekly", "global:monthly:shards=2"):
        conflicting = Settings(
            _env_file=None,
            **(settings.model_dump(exclude={"boards_spec"}) | {"LEADERBOARD_BOARDS": spec}),
        )
        with pytest.raises(BoardConflict) as refused:
            async with instance(conflicting):
                pass
        board_id = spec.partition(":")[0]
        assert f"LEADERBOARD_BOARDS declares board {board_id!r}" in str(refused.value)
        assert "the boards table has" in str(refused.value)
    # The same declaration as stored starts.
    same = Settings(
        _env_file=None,
        **(settings.model_dump(exclude={"boards_spec"}) | {"LEADERBOARD_BOARDS": "race:daily"}),
    )
    async with instance(same) as client:
        assert (await client.data(BOARD, {"id": "race"}))["leaderboard"]["reset"] == "DAILY"


@pytest.mark.parametrize("backend", ["redis-mysql"])
async def test_another_instance_serves_a_created_board_within_a_second(
    settings: Settings,
) -> None:
    # A long reload interval: only the notice can make it within the second.
    notified = settings.model_copy(update={"boards_reload_seconds": 60.0})
    async with instance(notified) as a, instance(notified) as b:
        await a.data(CREATE, race(maxDelta=50))
        created = time.monotonic()
        while True:
            body = await b.execute(INCREMENT, {"username": "ana", "delta": 5, "board": "race"})
            if "errors" not in body:
                break
            assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND", body
            assert time.monotonic() - created < 1.0, "instance B did not serve the board in 1 s"
            await asyncio.sleep(0.01)
        served = time.monotonic() - created
        assert served < 1.0
        # Changes follow the same way: B refuses what A's new cap refuses.
        await a.data(UPDATE, {"id": "race", "maxDelta": 3})
        await a.data(ARCHIVE, {"id": "race"})
        deadline = time.monotonic() + 1.0
        while (await b.data(BOARD, {"id": "race"}))["leaderboard"]["active"]:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        assert (await b.data(BOARD, {"id": "race"}))["leaderboard"]["maxDelta"] == 3


async def test_the_periodic_reload_catches_a_lost_notice(settings: Settings) -> None:
    # B listens on another notice channel (another key prefix; embedded: no notices at
    # all), as if every notice were lost: only the reload of the table brings the board.
    a_settings = settings.model_copy(update={"boards_reload_seconds": 60.0})
    b_settings = settings.model_copy(
        update={"boards_reload_seconds": 0.3, "key_prefix": f"{settings.key_prefix}-b"}
    )
    async with instance(a_settings) as a, instance(b_settings) as b:
        await a.data(CREATE, race())
        deadline = time.monotonic() + 1.0
        while "errors" in await b.execute(BOARD, {"id": "race"}):
            assert time.monotonic() < deadline, "the reload did not bring the board"
            await asyncio.sleep(0.02)


async def test_a_created_board_can_be_watched(app: Starlette, admin: GraphQLHttp) -> None:
    await admin.data(CREATE, race(timeZone="Asia/Tokyo"))
    watch = 'subscription { topPlayersChanged(board: "race", limit: 3) { username score } }'
    async with subscription_to(app, TRANSPORT_WS) as subscription:
        await subscription.start(watch)
        assert (await subscription.next())["data"]["topPlayersChanged"] == []
        await admin.data(INCREMENT, {"username": "ana", "delta": 2, "board": "race"})
        changed = (await subscription.next())["data"]["topPlayersChanged"]
        assert changed == [{"username": "ana", "score": 2}]
