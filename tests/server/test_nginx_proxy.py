"""Two `leaderboard serve` processes behind nginx, configured from docker/nginx's template."""

from __future__ import annotations

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.support.graphql_client import TRANSPORT_WS, GraphQLHttp, Subscription
from tests.support.metrics import metric
from tests.support.nginx import NginxProxy
from tests.support.operations import INCREMENT, RANK_CHANGED, TOP
from tests.support.service_fixtures import TOKEN, ProcessFactory, WebSocketText
from tests.support.service_process import ServiceProcess

pytestmark = pytest.mark.integration


async def mutations_served(instance: ServiceProcess) -> float:
    return await metric(instance, "leaderboard_graphql_operations_total", type="mutation")


async def top_totals(gql: GraphQLHttp) -> dict[str, int]:
    data = await gql.data(TOP, {"limit": 100})
    return {row["username"]: row["score"] for row in data["topPlayers"]}


async def test_two_instances_behind_nginx_share_writes_reads_and_subscriptions(
    service_process: ProcessFactory, redis_mysql_environment: dict[str, str]
) -> None:
    # One Redis prefix and one MariaDB database: the two instances share their state.
    instances = [service_process(redis_mysql_environment) for _ in range(2)]
    for instance in instances:
        await instance.start()
    upstreams = [f"127.0.0.1:{instance.port}" for instance in instances]
    async with (
        NginxProxy(upstreams) as proxy,
        httpx.AsyncClient(base_url=proxy.url) as client,
    ):
        health = await client.get("/healthz")
        assert (health.status_code, health.text) == (200, "ok"), proxy.log()
        assert (await client.get("/readyz")).status_code == 200
        # Metrics are scraped per instance, never through the public port.
        assert (await client.get("/metrics")).status_code == 404

        gql = GraphQLHttp(client, token=TOKEN)
        for number in range(6):
            await gql.data(INCREMENT, {"username": f"p{number % 3}", "delta": number + 1})
        served = [await mutations_served(instance) for instance in instances]
        assert sum(served) == 6
        assert all(count > 0 for count in served), f"nginx used one instance only: {served}"
        # Reads in turn on both instances: each sees every write, whoever took it.
        for _ in instances:
            assert await top_totals(gql) == {"p0": 5, "p1": 7, "p2": 9}

        # One request id end to end: the client's, else one made at the edge (32 hex digits).
        given = await client.get("/healthz", headers={"X-Request-ID": "match-9.req-1"})
        assert given.headers["X-Request-ID"] == "match-9.req-1"
        made = (await client.get("/healthz")).headers["X-Request-ID"]
        assert len(made) == 32
        assert set(made) <= set("0123456789abcdef")

        # The token check happens behind the proxy too: the header passes through nginx.
        assert await gql.error_codes(INCREMENT, {"username": "p0", "delta": 1}, token="") == [
            "UNAUTHENTICATED"
        ]

        websocket_url = proxy.url.replace("http://", "ws://", 1) + "/graphql"
        async with connect(websocket_url, subprotocols=[TRANSPORT_WS]) as socket:  # type: ignore[list-item]
            assert socket.subprotocol == TRANSPORT_WS
            subscription = Subscription(WebSocketText(socket), TRANSPORT_WS)
            await subscription.init()
            await subscription.start(RANK_CHANGED, {"username": "p2"})
            now = (await subscription.next())["data"]["rankChanged"]
            assert (now["score"], now["rank"]) == (9, 1)

            holding = [
                await metric(instance, "leaderboard_subscriptions") for instance in instances
            ]
            assert sorted(holding) == [0, 1], holding
            other = instances[holding.index(0)]
            before = await mutations_served(other)
            # least_conn sends this write to the instance without the WebSocket: the event
            # has to cross instances (Redis pub/sub) to reach the subscriber.
            await gql.data(INCREMENT, {"username": "p0", "delta": 10})
            assert await mutations_served(other) == before + 1

            passed = (await subscription.next())["data"]["rankChanged"]
            assert (
                passed["username"],
                passed["score"],
                passed["rank"],
                passed["previousRank"],
            ) == ("p2", 9, 2, 1)


async def test_nginx_answers_unknown_paths_itself() -> None:
    # No instance at all behind it: nothing but the proxied paths may reach one.
    async with (
        NginxProxy(["127.0.0.1:9"]) as proxy,
        httpx.AsyncClient(base_url=proxy.url) as client,
    ):
        assert (await client.get("/")).status_code == 404
        assert (await client.get("/graphql-websocket")).status_code == 404
        assert (await client.get("/healthz")).status_code == 502
