"""rankChanged and topPlayersChanged over WebSocket, in both subscription protocols."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette

from tests.support.asgi_app import subscription_to
from tests.support.graphql_client import LEGACY_WS, TRANSPORT_WS, GraphQLHttp
from tests.support.operations import RANK_CHANGED, TOP_CHANGED, score

pytestmark = pytest.mark.integration


@pytest.fixture(params=[TRANSPORT_WS, LEGACY_WS])
def protocol(request: pytest.FixtureRequest) -> str:
    """The WebSocket subprotocol under test."""
    return str(request.param)


async def test_rank_changed_reports_standing_then_changes(
    gql: GraphQLHttp, app: Starlette, protocol: str
) -> None:
    await score(gql, "ana", 10)
    async with subscription_to(app, protocol) as subscription:
        await subscription.start(RANK_CHANGED, {"username": "ana"})
        first = (await subscription.next())["data"]["rankChanged"]
        assert (first["username"], first["score"], first["rank"], first["previousRank"]) == (
            "ana",
            10,
            1,
            None,
        )
        await score(gql, "bo", 5)  # below ana: no change for ana
        await score(gql, "bo", 5)  # ties ana: a tie does not pass
        await subscription.nothing_within(0.3)
        await score(gql, "bo", 1)  # passes ana
        passed = (await subscription.next())["data"]["rankChanged"]
        assert (passed["score"], passed["rank"], passed["previousRank"]) == (10, 2, 1)
        await score(gql, "ana", 5)  # ana scores and leads again
        own = (await subscription.next())["data"]["rankChanged"]
        assert (own["score"], own["rank"], own["previousRank"]) == (15, 1, 2)
        await score(gql, "bo", -20)  # bo was below ana already
        await subscription.nothing_within(0.3)


async def test_rank_changed_waits_for_a_first_score(
    gql: GraphQLHttp, app: Starlette, protocol: str
) -> None:
    await score(gql, "bo", 50)
    async with subscription_to(app, protocol) as subscription:
        await subscription.start(RANK_CHANGED, {"username": "newbie"})
        await subscription.nothing_within(0.3)
        await score(gql, "newbie", 1)
        first = (await subscription.next())["data"]["rankChanged"]
        assert (first["score"], first["rank"], first["previousRank"]) == (1, 2, None)


async def test_top_players_changed_sends_top_then_changes(
    gql: GraphQLHttp, app: Starlette, protocol: str
) -> None:
    await score(gql, "ana", 10)
    async with subscription_to(app, protocol) as subscription:
        await subscription.start(TOP_CHANGED, {"limit": 2})
        initial = (await subscription.next())["data"]["topPlayersChanged"]
        assert [(row["username"], row["rank"]) for row in initial] == [("ana", 1)]
        await score(gql, "bo", 20)
        changed = (await subscription.next())["data"]["topPlayersChanged"]
        assert [(row["username"], row["score"], row["rank"]) for row in changed] == [
            ("bo", 20, 1),
            ("ana", 10, 2),
        ]
        await score(gql, "cy", 1)  # below a full top two: no new list
        await subscription.nothing_within(0.3)


async def test_subscription_arguments_are_validated(app: Starlette, protocol: str) -> None:
    async with subscription_to(app, protocol) as subscription:
        await subscription.start(TOP_CHANGED, {"limit": 0})
        result = await subscription.next()
        assert [error["extensions"]["code"] for error in result["errors"]] == ["BAD_USER_INPUT"]
        await subscription.start(RANK_CHANGED, {"username": "ana", "board": "nope"})
        result = await subscription.next()
        assert [error["extensions"]["code"] for error in result["errors"]] == ["NOT_FOUND"]
