"""`leaderboard serve` as a user runs it: embedded default, and on Redis + MariaDB."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.support.graphql_client import LEGACY_WS, TRANSPORT_WS, GraphQLHttp, Subscription
from tests.support.history_database import history_totals
from tests.support.metrics import metric_value
from tests.support.operations import (
    INCREMENT,
    INCREMENTS,
    NEIGHBORHOOD,
    PLAYER,
    RANK_CHANGED,
    TOP,
    TOP_CHANGED,
)
from tests.support.service_fixtures import TOKEN, ProcessFactory, WebSocketText, served
from tests.support.shared_services import delete_prefix

pytestmark = pytest.mark.integration


async def top_totals(gql: GraphQLHttp) -> dict[str, int]:
    data = await gql.data(TOP, {"limit": 100})
    return {row["username"]: row["score"] for row in data["topPlayers"]}


async def test_embedded_default_serves_and_keeps_data_across_restart(
    service_process: ProcessFactory, tmp_path: Path
) -> None:
    # No token configured: one is generated and printed; no Redis, no MySQL: embedded.
    first = service_process({})
    await first.start()
    token_lines = [line for line in first.log().splitlines() if "write token" in line]
    assert token_lines, first.log()
    token = token_lines[0].rsplit(" ", 1)[1]
    async with httpx.AsyncClient(base_url=first.url) as client:
        gql = GraphQLHttp(client, token=token)
        assert await gql.error_codes(INCREMENT, {"username": "ana", "delta": 1}, token="") == [
            "UNAUTHENTICATED"
        ]
        await gql.data(
            INCREMENTS,
            {"increments": [{"username": "ana", "delta": 7}, {"username": "bo", "delta": 3}]},
        )
        graphiql = await client.get("/graphql", headers={"Accept": "text/html"})
        assert graphiql.status_code == 200
        assert "graphiql" in graphiql.text.lower()
    assert await first.terminate()
    assert (tmp_path / "leaderboard.db").exists()

    second = service_process({"LEADERBOARD_WRITE_TOKEN": "fixed"})
    await second.start()
    async with httpx.AsyncClient(base_url=second.url) as client:
        gql = GraphQLHttp(client, token="fixed")
        assert await top_totals(gql) == {"ana": 7, "bo": 3}
        data = await gql.data(INCREMENT, {"username": "bo", "delta": 10})
        assert (data["incrementScore"]["score"], data["incrementScore"]["rank"]) == (13, 1)


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_every_operation_on_redis_and_mysql(
    service_process: ProcessFactory, redis_mysql_environment: dict[str, str], protocol: str
) -> None:
    process = service_process(redis_mysql_environment)
    await process.start()
    ws_url = process.url.replace("http", "ws") + "/graphql"
    async with (
        httpx.AsyncClient(base_url=process.url) as client,
        connect(ws_url, subprotocols=[protocol]) as socket,  # type: ignore[list-item]
    ):
        gql = GraphQLHttp(client, token=TOKEN)
        await gql.data(INCREMENT, {"username": "ana", "delta": 10})
        subscription = Subscription(WebSocketText(socket), protocol)
        await subscription.init()
        await subscription.start(RANK_CHANGED, {"username": "ana"})
        assert (await subscription.next())["data"]["rankChanged"]["rank"] == 1
        await subscription.start(TOP_CHANGED, {"limit": 2})
        assert len((await subscription.next())["data"]["topPlayersChanged"]) == 1

        await gql.data(INCREMENTS, {"increments": [{"username": "bo", "delta": 15}]})
        messages = [await subscription.next(), await subscription.next()]
        kinds = {next(iter(message["data"])) for message in messages}
        assert kinds == {"rankChanged", "topPlayersChanged"}
        assert (await gql.data(PLAYER, {"username": "ana"}))["player"]["rank"] == 2
        around = await gql.data(NEIGHBORHOOD, {"username": "ana", "radius": 1})
        assert [row["username"] for row in around["neighborhood"]] == ["bo", "ana"]
        boards = await gql.data("{ leaderboards { id playerCount } }")
        assert {"id": "global", "playerCount": 2} in boards["leaderboards"]
        metrics = await client.get("/metrics")
        assert "leaderboard_graphql_operations_total" in metrics.text
        assert (await client.get("/healthz")).status_code == 200


async def test_sigterm_drains_the_write_buffer(
    service_process: ProcessFactory, redis_mysql_environment: dict[str, str]
) -> None:
    # A flush interval far longer than the test: only the drain can write these events.
    environment = redis_mysql_environment | {
        "LEADERBOARD_FLUSH_INTERVAL_MS": "60000",
        "LEADERBOARD_FLUSH_MAX_EVENTS": "10000",
    }
    process = service_process(environment)
    await process.start()
    expected: dict[str, int] = {}
    async with httpx.AsyncClient(base_url=process.url) as client:
        gql = GraphQLHttp(client, token=TOKEN)
        for round_number in range(20):
            deltas = {f"p{index}": round_number + index + 1 for index in range(25)}
            increments = [{"username": name, "delta": delta} for name, delta in deltas.items()]
            await gql.data(INCREMENTS, {"increments": increments})
            for name, delta in deltas.items():
                expected[name] = expected.get(name, 0) + delta
    assert await history_totals(environment["LEADERBOARD_DATABASE_URL"]) == {}
    assert await process.terminate()
    assert await history_totals(environment["LEADERBOARD_DATABASE_URL"]) == expected


async def test_lost_redis_is_rebuilt_from_mysql(
    service_process: ProcessFactory, redis_mysql_environment: dict[str, str]
) -> None:
    process = service_process(redis_mysql_environment)
    async with served(process) as (_client, gql):
        for index in range(30):
            await gql.data(
                INCREMENT, {"username": f"p{index % 7}", "delta": index + 1, "eventId": f"e{index}"}
            )
        before = await top_totals(gql)
        await asyncio.sleep(0.5)  # let the batcher flush
        # Redis loses everything (restart without persistence, failover, FLUSHALL).
        await delete_prefix(redis_mysql_environment["LEADERBOARD_KEY_PREFIX"])
        assert await top_totals(gql) == before
        # Idempotency survives the loss: a replayed event id is not applied again.
        replay = await gql.data(INCREMENT, {"username": "p0", "delta": 1, "eventId": "e0"})
        assert replay["incrementScore"]["applied"] is False
        assert await top_totals(gql) == before
    assert await process.terminate()
    assert await history_totals(redis_mysql_environment["LEADERBOARD_DATABASE_URL"]) == before


async def test_restart_on_empty_redis_recovers_from_mysql(
    service_process: ProcessFactory, redis_mysql_environment: dict[str, str]
) -> None:
    first = service_process(redis_mysql_environment)
    async with served(first) as (client, gql):
        await gql.data(
            INCREMENTS, {"increments": [{"username": f"p{i}", "delta": i + 1} for i in range(50)]}
        )
        before = await top_totals(gql)
    assert await first.terminate()
    await delete_prefix(redis_mysql_environment["LEADERBOARD_KEY_PREFIX"])
    second = service_process(redis_mysql_environment)
    await second.start()
    async with httpx.AsyncClient(base_url=second.url) as client:
        assert await top_totals(GraphQLHttp(client)) == before


async def test_four_instances_starting_together_rebuild_once(
    service_process: ProcessFactory, redis_mysql_environment: dict[str, str]
) -> None:
    seed = service_process(redis_mysql_environment)
    async with served(seed) as (client, gql):
        for round_number in range(4):
            await gql.data(
                INCREMENTS,
                {
                    "increments": [
                        {"username": f"p{i}", "delta": round_number + i} for i in range(1, 200)
                    ]
                },
            )
    assert await seed.terminate()
    expected = await history_totals(redis_mysql_environment["LEADERBOARD_DATABASE_URL"])
    best = sorted(expected.items(), key=lambda item: (-item[1], item[0]))[:100]
    await delete_prefix(redis_mysql_environment["LEADERBOARD_KEY_PREFIX"])

    instances = [service_process(redis_mysql_environment) for _ in range(4)]
    await asyncio.gather(*(instance.start() for instance in instances))
    rebuilds = 0
    for instance in instances:
        async with httpx.AsyncClient(base_url=instance.url) as client:
            data = await GraphQLHttp(client).data(TOP, {"limit": 100})
            assert [(row["username"], row["score"]) for row in data["topPlayers"]] == best
            metrics = (await client.get("/metrics")).text
            rebuilds += int(float(metric_value(metrics, 'leaderboard_rebuilds_total{result="ok"}')))
    # One rebuild per board (global and alltime), whichever instance won each claim.
    assert rebuilds == 2
