"""Player reads over HTTP on both backends, on a plain and a sharded board: `players`
(friends' standings), `neighborhood(fill:)`, `ranking` (stable paging with cursors) and
`topPercent` (#14)."""

from __future__ import annotations

import asyncio
import base64
import random
from typing import Any

import pytest

from tests.support.asgi_app import BOARDS
from tests.support.graphql_client import GraphQLHttp
from tests.support.operations import INCREMENTS

pytestmark = pytest.mark.integration

SHARDED = "sharded"


@pytest.fixture
def setting_overrides() -> dict[str, Any]:
    return {"LEADERBOARD_BOARDS": f"{BOARDS},{SHARDED}:monthly:shards=4"}


@pytest.fixture(params=["global", SHARDED])
def board(request: pytest.FixtureRequest) -> str:
    return str(request.param)


PLAYERS = """
query($usernames: [String!]!, $board: ID! = "global", $period: String) {
  players(usernames: $usernames, board: $board, period: $period) {
    username score rank topPercent
  }
}"""

FILLED = """
query($username: String!, $radius: Int!, $board: ID!, $fill: Boolean!) {
  neighborhood(username: $username, radius: $radius, board: $board, fill: $fill) {
    username rank
  }
}"""

RANKING = """
query($board: ID! = "global", $first: Int! = 10, $after: String, $period: String) {
  ranking(board: $board, first: $first, after: $after, period: $period) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { cursor node { username score rank topPercent } }
  }
}"""


async def load(gql: GraphQLHttp, board: str, totals: dict[str, int]) -> None:
    """Give each player its total on `board`, 1000 increments per call."""
    items = [{"username": name, "delta": total, "board": board} for name, total in totals.items()]
    for start in range(0, len(items), 1000):
        await gql.data(INCREMENTS, {"increments": items[start : start + 1000]})


SIX = {"alice": 30, "bob": 20, "carol": 20, "dave": 10, "erin": 10, "frank": 5}


async def test_friends_standings_best_first_with_top_percent(gql: GraphQLHttp, board: str) -> None:
    await load(gql, board, SIX)
    data = await gql.data(
        PLAYERS, {"usernames": ["frank", "ghost", "carol", "alice"], "board": board}
    )
    assert data["players"] == [
        {"username": "alice", "score": 30, "rank": 1, "topPercent": 100 / 6},
        {"username": "carol", "score": 20, "rank": 2, "topPercent": 200 / 6},
        {"username": "frank", "score": 5, "rank": 6, "topPercent": 100.0},
    ]
    nobody = await gql.data(PLAYERS, {"usernames": ["ghost"], "board": board})
    assert nobody["players"] == []


@pytest.mark.parametrize(
    "usernames",
    [
        [],
        [f"p{index}" for index in range(101)],
        ["ana", "ana"],
        ["ana", "bad name"],
        ["x" * 65],
    ],
    ids=["none", "101", "repeated", "invalid", "too-long"],
)
async def test_players_refuses_bad_lists(gql: GraphQLHttp, usernames: list[str]) -> None:
    assert await gql.error_codes(PLAYERS, {"usernames": usernames}) == ["BAD_USER_INPUT"]


async def test_a_hundred_names_are_accepted(gql: GraphQLHttp, board: str) -> None:
    await load(gql, board, {f"p{index}": index + 1 for index in range(150)})
    names = [f"p{index}" for index in range(0, 200, 2)]
    data = await gql.data(PLAYERS, {"usernames": names, "board": board})
    assert [row["username"] for row in data["players"]] == [
        f"p{index}" for index in range(148, -1, -2)
    ]
    assert [row["rank"] for row in data["players"]] == [150 - index for index in range(148, -1, -2)]


async def test_filled_neighborhood_and_today_unfilled(gql: GraphQLHttp, board: str) -> None:
    await load(gql, board, {f"p{index}": 100 - index for index in range(10)})  # p0 first

    async def window(username: str, radius: int, fill: bool) -> list[str]:
        variables = {"username": username, "radius": radius, "board": board, "fill": fill}
        data = await gql.data(FILLED, variables)
        return [row["username"] for row in data["neighborhood"]]

    assert await window("p0", 2, True) == ["p0", "p1", "p2", "p3", "p4"]
    assert await window("p0", 2, False) == ["p0", "p1", "p2"]
    assert await window("p9", 2, True) == ["p5", "p6", "p7", "p8", "p9"]
    assert await window("p8", 2, True) == ["p5", "p6", "p7", "p8", "p9"]
    assert await window("p8", 2, False) == ["p6", "p7", "p8", "p9"]
    assert await window("p5", 2, True) == ["p3", "p4", "p5", "p6", "p7"]
    assert await window("p5", 9, True) == [f"p{index}" for index in range(10)]


async def page_through(
    gql: GraphQLHttp, board: str, first: int, between: Any = None
) -> list[dict[str, Any]]:
    """Every node of the ranking, following endCursor; `between` runs after each page."""
    nodes: list[dict[str, Any]] = []
    after = None
    while True:
        data = await gql.data(RANKING, {"board": board, "first": first, "after": after})
        connection = data["ranking"]
        nodes += [edge["node"] for edge in connection["edges"]]
        if connection["edges"]:
            assert connection["pageInfo"]["endCursor"] == connection["edges"][-1]["cursor"]
        if not connection["pageInfo"]["hasNextPage"]:
            return nodes
        after = connection["pageInfo"]["endCursor"]
        if between is not None:
            await between()


async def test_ranking_pages_with_ranks_and_total(gql: GraphQLHttp, board: str) -> None:
    await load(gql, board, SIX)
    data = await gql.data(RANKING, {"board": board, "first": 4})
    assert data["ranking"]["totalCount"] == 6
    assert data["ranking"]["pageInfo"]["hasNextPage"] is True
    nodes = await page_through(gql, board, 4)
    assert [(node["username"], node["rank"]) for node in nodes] == [
        ("alice", 1),
        ("bob", 2),
        ("carol", 2),
        ("dave", 4),
        ("erin", 4),
        ("frank", 6),
    ]
    assert nodes[-1]["topPercent"] == 100.0
    empty = await gql.data(RANKING, {"board": "alltime"})
    assert empty["ranking"] == {
        "totalCount": 0,
        "pageInfo": {"hasNextPage": False, "endCursor": None},
        "edges": [],
    }


def forged(payload: bytes) -> str:
    return base64.urlsafe_b64encode(payload).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "variables",
    [
        {"first": 0},
        {"first": 101},
        {"after": "not a cursor"},
        {"after": ""},
        {"after": forged(b"[1, 2, 3]")},
        {"after": forged(b'[2, "global", "2026-05", -5, "ana"]')},
        {"after": forged(b'[1, "global", "2026-05", "-5", "ana"]')},
        {"after": forged(b'[1, "global", "2026-05", 1e300, "ana"]')},
        {"after": forged(b'[1, "global", "2026-05", -5, ""]')},
        {"after": forged(b"{}")},
        {"after": "A" * 10_000},
    ],
    ids=lambda variables: repr(variables)[:40],
)
async def test_ranking_refuses_bad_arguments(gql: GraphQLHttp, variables: dict[str, Any]) -> None:
    assert await gql.error_codes(RANKING, variables) == ["BAD_USER_INPUT"]


async def test_a_cursor_of_another_board_or_period_is_refused(gql: GraphQLHttp) -> None:
    await load(gql, "global", SIX)
    await load(gql, "daily-race", SIX)
    data = await gql.data(RANKING, {"first": 2})
    cursor = data["ranking"]["pageInfo"]["endCursor"]
    codes = await gql.error_codes(RANKING, {"board": "daily-race", "after": cursor})
    assert codes == ["BAD_USER_INPUT"]
    codes = await gql.error_codes(RANKING, {"after": cursor, "period": "2001-01"})
    assert codes == ["BAD_USER_INPUT"]
    # The same cursor on its own board period goes on.
    data = await gql.data(RANKING, {"after": cursor, "first": 10})
    assert [edge["node"]["username"] for edge in data["ranking"]["edges"]] == [
        "carol",
        "dave",
        "erin",
        "frank",
    ]


async def test_paging_while_others_score_sees_each_unchanged_player_once(
    gql: GraphQLHttp, board: str
) -> None:
    """10,000 players read 100 at a time while a tenth of them keep scoring (up and down)
    between and during the reads: everyone who did not move is seen exactly once, in order."""
    rng = random.Random(14)
    totals = {f"p{index:05}": rng.randrange(1, 5000) for index in range(10_000)}
    await load(gql, board, totals)
    movers = rng.sample(sorted(totals), 1000)
    stop = asyncio.Event()

    async def keep_scoring() -> None:
        while not stop.is_set():
            batch = [
                {"username": name, "delta": rng.choice([-3000, -50, 1, 70, 4000]), "board": board}
                for name in rng.sample(movers, 50)
            ]
            await gql.data(INCREMENTS, {"increments": batch})
            await asyncio.sleep(0)

    async def between_pages() -> None:
        batch = [
            {"username": name, "delta": rng.choice([-2000, 5, 2000]), "board": board}
            for name in rng.sample(movers, 20)
        ]
        await gql.data(INCREMENTS, {"increments": batch})

    writer = asyncio.create_task(keep_scoring())
    try:
        nodes = await page_through(gql, board, 100, between_pages)
    finally:
        stop.set()
        await writer
    moved = set(movers)
    still = [node for node in nodes if node["username"] not in moved]
    assert len(still) == len({node["username"] for node in still}) == 10_000 - 1000
    # And in the ranking's order: score descending, then username.
    assert [(-node["score"], node["username"]) for node in still] == sorted(
        (-totals[node["username"]], node["username"]) for node in still
    )
