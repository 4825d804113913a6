"""setScore and the board kinds through the API, on both backends (Redis + MariaDB, and the
embedded store + SQLite): BEST and LATEST, ASC order, EARLIEST ties, caps, the wrong kind
of board, eventId replays, and a rebuild from the history keeping every rank."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from server.app import create_app
from server.settings import AckMode, Settings
from tests.support.graphql_client import GraphQLHttp, Json
from tests.support.shared_services import delete_prefix

pytestmark = pytest.mark.integration

ADMIN = "test-admin-token"
MAX_EXACT = 2**53 - 1

CREATE = """
mutation ($input: LeaderboardInput!) {
  createLeaderboard(input: $input) { id updateRule sortOrder tieBreak minScore maxScore }
}
"""
SET = """
mutation ($username: String!, $score: Long!, $board: ID!, $eventId: String) {
  setScore(username: $username, score: $score, board: $board, eventId: $eventId) {
    username board period score rank improved applied
  }
}
"""
INCREMENT = """
mutation ($username: String!, $delta: Int!, $board: ID!) {
  incrementScore(username: $username, delta: $delta, board: $board) { score rank }
}
"""
INCREMENTS = """
mutation ($increments: [ScoreIncrement!]!) {
  incrementScores(increments: $increments) { score rank __typename }
}
"""
STANDINGS = """
query ($board: ID!, $username: String!) {
  topPlayers(board: $board, limit: 100) { username score rank }
  player(board: $board, username: $username) { score rank }
  neighborhood(board: $board, username: $username, radius: 1) { username rank }
  leaderboard(id: $board) { playerCount }
}
"""


@pytest.fixture
def setting_overrides() -> dict[str, Any]:
    """An admin token, and acknowledgements once the history has the write (so a rebuild
    right after sees every acknowledged write)."""
    return {"admin_token": ADMIN, "ack": AckMode.PERSISTED}


@pytest.fixture
def admin(app: Starlette, http: httpx.AsyncClient) -> GraphQLHttp:
    """A client presenting the admin token (it may write too)."""
    return GraphQLHttp(http, token=ADMIN)


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


def board(board_id: str, **fields: Any) -> Json:
    """createLeaderboard's variables."""
    return {"input": {"id": board_id, **fields}}


async def submit(
    client: GraphQLHttp, username: str, score: int, board_id: str, **extra: Any
) -> Json:
    """setScore's answer."""
    variables = {"username": username, "score": score, "board": board_id, **extra}
    answer: Json = (await client.data(SET, variables))["setScore"]
    return answer


async def standings(client: GraphQLHttp, board_id: str, username: str = "ana") -> Json:
    """Every read of a board at once: top, player, neighborhood, count."""
    return await client.data(STANDINGS, {"board": board_id, "username": username})


def top(state: Json) -> list[tuple[str, int, int]]:
    """(username, score, rank) of the top list."""
    return [(p["username"], p["score"], p["rank"]) for p in state["topPlayers"]]


async def test_a_race_board_keeps_each_players_best_time(admin: GraphQLHttp) -> None:
    created = await admin.data(
        CREATE, board("race", updateRule="BEST", sortOrder="ASC", tieBreak="EARLIEST")
    )
    assert created["createLeaderboard"] == {
        "id": "race",
        "updateRule": "BEST",
        "sortOrder": "ASC",
        "tieBreak": "EARLIEST",
        "minScore": None,
        "maxScore": None,
    }
    first = await submit(admin, "ana", 61_250, "race")
    assert first | {"period": None} == {
        "username": "ana",
        "board": "race",
        "period": None,
        "score": 61_250,
        "rank": 1,
        "improved": True,
        "applied": True,
    }
    assert (await submit(admin, "bo", 59_900, "race"))["rank"] == 1
    # Equal to ana's time, reached later: behind her, with a rank of its own.
    assert (await submit(admin, "cy", 61_250, "race"))["rank"] == 3
    # A slower lap keeps ana's best, and does not move her behind cy.
    slower = await submit(admin, "ana", 70_000, "race")
    assert (slower["score"], slower["rank"], slower["improved"]) == (61_250, 2, False)
    state = await standings(admin, "race")
    assert top(state) == [("bo", 59_900, 1), ("ana", 61_250, 2), ("cy", 61_250, 3)]
    assert state["player"] == {"score": 61_250, "rank": 2}
    assert [p["username"] for p in state["neighborhood"]] == ["bo", "ana", "cy"]
    assert state["leaderboard"]["playerCount"] == 3
    # A faster lap moves her to the front.
    faster = await submit(admin, "ana", 58_000, "race")
    assert (faster["score"], faster["rank"], faster["improved"]) == (58_000, 1, True)


async def test_a_latest_board_keeps_the_last_submission(admin: GraphQLHttp) -> None:
    await admin.data(CREATE, board("rating", updateRule="LATEST"))
    await submit(admin, "ana", 1500, "rating")
    await submit(admin, "bo", 1400, "rating")
    lower = await submit(admin, "ana", 1300, "rating")
    assert (lower["score"], lower["rank"], lower["improved"]) == (1300, 2, True)
    same = await submit(admin, "ana", 1300, "rating")
    assert (same["improved"], same["applied"]) == (False, True)
    assert top(await standings(admin, "rating")) == [("bo", 1400, 1), ("ana", 1300, 2)]


async def test_an_asc_increment_board_ranks_the_lowest_total_first(admin: GraphQLHttp) -> None:
    await admin.data(CREATE, board("strokes", sortOrder="ASC"))
    for username, delta in (("ana", 4), ("bo", 3), ("cy", 5), ("ana", 1), ("cy", -2)):
        await admin.data(INCREMENT, {"username": username, "delta": delta, "board": "strokes"})
    assert top(await standings(admin, "strokes")) == [
        ("bo", 3, 1),
        ("cy", 3, 1),
        ("ana", 5, 3),
    ]


async def test_an_event_id_replays_the_same_submission(admin: GraphQLHttp) -> None:
    await admin.data(CREATE, board("best", updateRule="BEST"))
    applied = await submit(admin, "ana", 10, "best", eventId="lap-1")
    replayed = await submit(admin, "ana", 10, "best", eventId="lap-1")
    assert replayed == applied | {"applied": False, "improved": False}
    before = await standings(admin, "best")
    other = await admin.error_codes(
        SET, {"username": "ana", "score": 20, "board": "best", "eventId": "lap-1"}
    )
    assert other == ["BAD_USER_INPUT"]
    assert await standings(admin, "best") == before


async def test_the_wrong_kind_of_board_is_refused_naming_the_right_mutation(
    admin: GraphQLHttp,
) -> None:
    await admin.data(CREATE, board("best", updateRule="BEST"))
    await admin.data(CREATE, board("latest", updateRule="LATEST"))
    await admin.data(INCREMENT, {"username": "ana", "delta": 5, "board": "global"})
    await submit(admin, "ana", 5, "best")
    before = [await standings(admin, board_id) for board_id in ("global", "best", "latest")]
    cases: list[tuple[str, Json, str]] = [
        (SET, {"username": "ana", "score": 3, "board": "global"}, "use incrementScore"),
        (INCREMENT, {"username": "ana", "delta": 3, "board": "best"}, "keeps the best score"),
        (INCREMENT, {"username": "ana", "delta": 3, "board": "latest"}, "use setScore"),
        (
            INCREMENTS,
            {
                "increments": [
                    {"username": "ana", "delta": 3, "board": "global"},
                    {"username": "ana", "delta": 3, "board": "best"},
                ]
            },
            "use setScore",
        ),
    ]
    for document, variables, words in cases:
        body = await admin.execute(document, variables)
        assert [error["extensions"]["code"] for error in body["errors"]] == ["BAD_USER_INPUT"]
        assert words in body["errors"][0]["message"]
    after = [await standings(admin, board_id) for board_id in ("global", "best", "latest")]
    assert after == before


@pytest.mark.parametrize("score", [MAX_EXACT + 1, -(MAX_EXACT + 1), 2**63])
async def test_a_score_beyond_the_exact_range_changes_nothing(
    admin: GraphQLHttp, score: int
) -> None:
    await admin.data(CREATE, board("best", updateRule="BEST"))
    await submit(admin, "ana", 5, "best")
    before = await standings(admin, "best")
    assert await admin.error_codes(SET, {"username": "ana", "score": score, "board": "best"}) == [
        "BAD_USER_INPUT"
    ]
    assert await standings(admin, "best") == before


async def test_scores_at_the_edge_of_the_exact_range(admin: GraphQLHttp) -> None:
    await admin.data(CREATE, board("edge", updateRule="LATEST", tieBreak="EARLIEST"))
    for username, score in (
        ("ana", MAX_EXACT - 1),
        ("bo", MAX_EXACT),
        ("cy", MAX_EXACT - 1),
        ("di", -MAX_EXACT),
        ("ed", -(MAX_EXACT - 1)),
    ):
        await submit(admin, username, score, "edge")
    assert top(await standings(admin, "edge")) == [
        ("bo", MAX_EXACT, 1),
        ("ana", MAX_EXACT - 1, 2),
        ("cy", MAX_EXACT - 1, 3),
        ("ed", -(MAX_EXACT - 1), 4),
        ("di", -MAX_EXACT, 5),
    ]


async def test_caps_refuse_the_whole_write_and_change_nothing(admin: GraphQLHttp) -> None:
    await admin.data(CREATE, board("capped", updateRule="BEST", minScore=0, maxScore=1000))
    await admin.data(CREATE, board("total", minScore=-5, maxScore=10))
    await submit(admin, "ana", 500, "capped")
    await admin.data(INCREMENT, {"username": "ana", "delta": 8, "board": "total"})
    before = [await standings(admin, board_id) for board_id in ("capped", "total")]
    refusals: list[tuple[str, Json, str]] = [
        (SET, {"username": "ana", "score": 1001, "board": "capped"}, "above maxScore 1000"),
        (SET, {"username": "bo", "score": -1, "board": "capped"}, "below minScore 0"),
        (INCREMENT, {"username": "ana", "delta": 3, "board": "total"}, "above maxScore 10"),
        (INCREMENT, {"username": "bo", "delta": -6, "board": "total"}, "below minScore -5"),
        (
            INCREMENTS,
            {
                "increments": [
                    {"username": "bo", "delta": 2, "board": "total"},
                    {"username": "ana", "delta": 2, "board": "total"},
                    {"username": "ana", "delta": 1, "board": "total"},
                ]
            },
            "the total of 'ana'",
        ),
    ]
    for document, variables, words in refusals:
        body = await admin.execute(document, variables)
        assert [error["extensions"]["code"] for error in body["errors"]] == ["BAD_USER_INPUT"]
        assert words in body["errors"][0]["message"], body
    assert [await standings(admin, board_id) for board_id in ("capped", "total")] == before
    # Within the caps, and with them lifted, writes go through.
    assert (await submit(admin, "ana", 1000, "capped"))["score"] == 1000
    updated = await admin.data(
        'mutation { updateLeaderboard(id: "total", maxScore: null) { maxScore } }'
    )
    assert updated["updateLeaderboard"]["maxScore"] is None
    written = await admin.data(INCREMENT, {"username": "ana", "delta": 3, "board": "total"})
    assert written["incrementScore"]["score"] == 11


async def test_a_rebuild_from_the_history_keeps_every_rank(
    settings: Settings, backend: str, redis_prefix: str
) -> None:
    boards = {
        "race": board("race", updateRule="BEST", sortOrder="ASC", tieBreak="EARLIEST"),
        "rating": board("rating", updateRule="LATEST", tieBreak="EARLIEST"),
        "points": board("points", tieBreak="EARLIEST"),
    }
    async with instance(settings) as first:
        for variables in boards.values():
            await first.data(CREATE, variables)
        for username, score in (("ana", 50), ("bo", 40), ("cy", 50), ("ana", 45), ("bo", 45)):
            await submit(first, username, score, "race")
            await submit(first, username, score, "rating")
            await first.data(INCREMENT, {"username": username, "delta": score, "board": "points"})
        before = {board_id: await standings(first, board_id) for board_id in boards}
    assert top(before["race"]) == [("bo", 40, 1), ("ana", 45, 2), ("cy", 50, 3)]
    assert top(before["rating"]) == [("cy", 50, 1), ("ana", 45, 2), ("bo", 45, 3)]
    assert top(before["points"]) == [("ana", 95, 1), ("bo", 85, 2), ("cy", 50, 3)]
    if backend == "redis-mysql":
        await delete_prefix(redis_prefix)  # Redis lost everything; MySQL has it all
    async with instance(settings) as second:
        after = {board_id: await standings(second, board_id) for board_id in boards}
        assert after == before
        # The rebuilt clock keeps later writes later: an equal score ranks behind.
        assert (await submit(second, "di", 45, "rating"))["rank"] == 4
