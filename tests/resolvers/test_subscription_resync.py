"""Pub/sub drops messages when a subscriber connection dies: subscriptions resync."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
import redis.asyncio as redis_asyncio
from websockets.asyncio.client import connect

from store.boards import parse_boards
from store.redis import RedisRankingStore
from tests.support.graphql_client import TRANSPORT_WS, GraphQLHttp, Subscription
from tests.support.operations import INCREMENT, PLAYER, RANK_CHANGED
from tests.support.private_servers import PrivateRedis
from tests.support.service_fixtures import TOKEN, ProcessFactory, WebSocketText

pytestmark = pytest.mark.integration


async def test_killed_subscriber_connection_is_healed_by_resync(
    service_process: ProcessFactory, private_redis: PrivateRedis, mysql_database_url: str
) -> None:
    process = service_process(
        {
            "LEADERBOARD_REDIS_URL": private_redis.url(),
            "LEADERBOARD_DATABASE_URL": mysql_database_url,
            "LEADERBOARD_WRITE_TOKEN": TOKEN,
            "LEADERBOARD_RESYNC_INTERVAL_SECONDS": "0.5",
        }
    )
    await process.start()
    ws_url = process.url.replace("http", "ws") + "/graphql"
    async with (
        redis_asyncio.Redis.from_url(private_redis.url()) as admin,
        httpx.AsyncClient(base_url=process.url) as client,
        connect(ws_url, subprotocols=[TRANSPORT_WS]) as socket,  # type: ignore[list-item]
    ):
        gql = GraphQLHttp(client, token=TOKEN)
        await gql.data(INCREMENT, {"username": "watched", "delta": 10})
        subscription = Subscription(WebSocketText(socket), TRANSPORT_WS)
        await subscription.init()
        await subscription.start(RANK_CHANGED, {"username": "watched"})
        assert (await subscription.next())["data"]["rankChanged"]["rank"] == 1

        # Kill the service's pub/sub connection, and pass the watched player without any
        # message at all (a rebuild writes no events): only a resync can tell the subscriber.
        killed = await admin.client_kill_filter(_type="pubsub")
        assert killed >= 1
        board = parse_boards("global:monthly")[0]
        store = RedisRankingStore.from_url(
            private_redis.url(), key_prefix="lb", boards=[board], retention=timedelta(days=1)
        )
        try:
            await store.load("global", board.current_period(), [("watched", 10), ("rival", 20)], [])
        finally:
            await store.close()
        healed = (await subscription.next(timeout=5.0))["data"]["rankChanged"]
        assert (healed["rank"], healed["score"]) == (2, 10)
        assert (await gql.data(PLAYER, {"username": "watched"}))["player"]["rank"] == 2

        # And the feed is live again: the next change arrives as an event.
        await gql.data(INCREMENT, {"username": "watched", "delta": 15})
        own = (await subscription.next(timeout=5.0))["data"]["rankChanged"]
        assert (own["rank"], own["score"], own["previousRank"]) == (1, 25, 2)
