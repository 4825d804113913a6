"""The seasons through GraphQL: `Leaderboard.periods` paging (newest first, cursors, exact
counts, startsAt/endsAt), `final` flipping at the boundary, a past period's reads from the
frozen standings, `periodEnded` over a WebSocket, bad arguments as BAD_USER_INPUT."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from server.app import create_app
from tests.support.asgi_app import TOKEN, make_settings, subscription_to
from tests.support.graphql_client import TRANSPORT_WS, GraphQLHttp
from tests.support.seasons import SharedClock, until, utc

pytestmark = pytest.mark.integration

PERIODS = """
query Periods($first: Int!, $after: String) {
  leaderboard(id: "daily-race") {
    periods(first: $first, after: $after) {
      edges { cursor node { board period startsAt endsAt playerCount final } }
      pageInfo { hasNextPage endCursor }
    }
  }
}
"""
INCREMENT = """
mutation Add($username: String!, $delta: Int!) {
  incrementScore(username: $username, delta: $delta, board: "daily-race") { score }
}
"""
TOP = """
query Top($period: String) {
  topPlayers(board: "daily-race", period: $period, limit: 5) { username score rank }
}
"""
PERIOD_ENDED = """
subscription Ended {
  periodEnded(board: "daily-race") { board period playerCount top { username score rank } }
}
"""


@pytest.fixture
def clock() -> SharedClock:
    return SharedClock(utc("2026-12-03T10:00:00"))


@pytest.fixture
async def app(
    backend: str,
    redis_prefix: str,
    mysql_database_url: str,
    sqlite_database_url: str,
    clock: SharedClock,
) -> AsyncIterator[Starlette]:
    settings = make_settings(
        backend,
        redis_prefix=redis_prefix,
        mysql_url=mysql_database_url,
        sqlite_url=sqlite_database_url,
        seasons_tick_seconds=0.5,
    )
    application = create_app(settings, clock=clock)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def gql(app: Starlette) -> AsyncIterator[GraphQLHttp]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app), base_url="http://testserver"
    ) as client:
        yield GraphQLHttp(client, token=TOKEN)


async def page(gql: GraphQLHttp, first: int, after: str | None = None) -> Any:
    data = await gql.data(PERIODS, {"first": first, "after": after})
    return data["leaderboard"]["periods"]


def nodes(connection: Any) -> list[tuple[str, int, bool]]:
    return [
        (edge["node"]["period"], edge["node"]["playerCount"], edge["node"]["final"])
        for edge in connection["edges"]
    ]


async def test_periods_page_newest_first_and_final_flips_at_the_boundary(
    gql: GraphQLHttp, clock: SharedClock
) -> None:
    for day, players in (("03", 3), ("04", 1), ("05", 2)):
        clock.set(utc(f"2026-12-{day}T10:00:00"))
        for index in range(players):
            await gql.data(INCREMENT, {"username": f"p{index}", "delta": index + 1})

    async def two_final() -> bool:
        return nodes(await page(gql, 3))[1:] == [("2026-12-04", 1, True), ("2026-12-03", 3, True)]

    await until(two_final, what="the two past days final")
    first = await page(gql, 2)
    assert nodes(first) == [("2026-12-05", 2, False), ("2026-12-04", 1, True)]
    assert first["pageInfo"]["hasNextPage"] is True
    assert first["edges"][0]["node"]["startsAt"] == "2026-12-05T00:00:00Z"
    assert first["edges"][0]["node"]["endsAt"] == "2026-12-06T00:00:00Z"
    assert first["pageInfo"]["endCursor"] == first["edges"][1]["cursor"]
    second = await page(gql, 2, first["pageInfo"]["endCursor"])
    assert nodes(second) == [("2026-12-03", 3, True)]
    assert second["pageInfo"] == {"hasNextPage": False, "endCursor": second["edges"][0]["cursor"]}

    live = await gql.data(TOP, {"period": "2026-12-05"})
    clock.set(utc("2026-12-06T00:00:00"))

    async def flipped() -> bool:
        return nodes(await page(gql, 1)) == [("2026-12-05", 2, True)]

    await until(flipped, what="2026-12-05 final")
    assert await gql.data(TOP, {"period": "2026-12-05"}) == live


async def test_period_ended_reaches_a_websocket_subscriber(
    app: Starlette, gql: GraphQLHttp, clock: SharedClock
) -> None:
    await gql.data(INCREMENT, {"username": "ana", "delta": 5})
    await gql.data(INCREMENT, {"username": "bob", "delta": 8})
    async with subscription_to(app, TRANSPORT_WS) as subscription:
        await subscription.start(PERIOD_ENDED)
        clock.set(utc("2026-12-04T00:00:01"))
        message = await subscription.next(timeout=20)
    assert message["data"]["periodEnded"] == {
        "board": "daily-race",
        "period": "2026-12-03",
        "playerCount": 2,
        "top": [
            {"username": "bob", "score": 8, "rank": 1},
            {"username": "ana", "score": 5, "rank": 2},
        ],
    }


@pytest.mark.parametrize(
    ("first", "after"), [(0, None), (101, None), (5, "not a cursor!"), (5, "//8")]
)
async def test_bad_paging_arguments_are_bad_user_input(
    gql: GraphQLHttp, first: int, after: str | None
) -> None:
    assert await gql.error_codes(PERIODS, {"first": first, "after": after}) == ["BAD_USER_INPUT"]
