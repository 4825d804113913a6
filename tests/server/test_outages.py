"""Outages under write load: refused writes change nothing, acknowledged ones are kept, and
the service recovers by itself once the failed server is back."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.graphql_client import GraphQLHttp
from tests.support.history_database import history_totals
from tests.support.metrics import metric_value
from tests.support.operations import TOP
from tests.support.private_servers import PrivateMariaDB, PrivateRedis
from tests.support.service_fixtures import TOKEN, ProcessFactory, served
from tests.support.shared_services import REDIS_URL
from tests.support.writer import Writer

pytestmark = pytest.mark.integration


async def served_totals(gql: GraphQLHttp) -> dict[str, int]:
    data = await gql.data(TOP, {"limit": 100})
    return {row["username"]: row["score"] for row in data["topPlayers"]}


@pytest.mark.parametrize(
    ("outage", "downtime"), [("stop", 0.5), ("kill", 20.0)], ids=["stopped", "killed-20s"]
)
async def test_mysql_outage_refuses_writes_then_recovers(
    service_process: ProcessFactory,
    private_mariadb: PrivateMariaDB,
    redis_prefix: str,
    outage: str,
    downtime: float,
) -> None:
    database = "leaderboard"
    database_url = await private_mariadb.create_database(database)
    process = service_process(
        {
            "LEADERBOARD_REDIS_URL": REDIS_URL,
            "LEADERBOARD_KEY_PREFIX": redis_prefix,
            "LEADERBOARD_DATABASE_URL": database_url,
            "LEADERBOARD_WRITE_TOKEN": TOKEN,
            "LEADERBOARD_MAX_BUFFERED_EVENTS": "2000",
        }
    )
    async with served(process, timeout=30) as (client, gql):
        writer = Writer(gql)
        writer.start()
        try:
            await writer.wait_for("accepted")
            await asyncio.sleep(0.3)
            await (private_mariadb.kill() if outage == "kill" else private_mariadb.stop())
            await writer.wait_for("refused")
            deepest = 0.0
            for _ in range(int(downtime / 0.25)):
                await asyncio.sleep(0.25)
                metrics = (await client.get("/metrics")).text
                deepest = max(deepest, float(metric_value(metrics, "leaderboard_batcher_depth")))
            assert 0 < deepest <= 2000  # held for the retry, within the bound
            # Refused writes changed nothing: Redis holds exactly what was acknowledged.
            assert await served_totals(gql) == dict(writer.acknowledged)
            await private_mariadb.start()
            await writer.wait_for("accepted")
            await asyncio.sleep(0.3)
        finally:
            await writer.stop()
        assert writer.other_errors == []
        assert writer.refused > 0
        assert await served_totals(gql) == dict(writer.acknowledged)
    assert await process.terminate()
    assert await history_totals(database_url) == dict(writer.acknowledged)


async def test_redis_killed_and_back_empty_is_rebuilt_without_restart(
    service_process: ProcessFactory, private_redis: PrivateRedis, mysql_database_url: str
) -> None:
    process = service_process(
        {
            "LEADERBOARD_REDIS_URL": private_redis.url(),
            "LEADERBOARD_DATABASE_URL": mysql_database_url,
            "LEADERBOARD_WRITE_TOKEN": TOKEN,
        }
    )
    async with served(process, timeout=30) as (client, gql):
        writer = Writer(gql)
        writer.start()
        try:
            await writer.wait_for("accepted")
            await asyncio.sleep(0.3)
            await private_redis.kill()  # no persistence: it comes back empty
            await writer.wait_for("refused")
            assert (await client.get("/readyz")).status_code == 503
            await asyncio.sleep(0.3)
            await private_redis.start()
            await writer.wait_for("accepted")
            await asyncio.sleep(0.3)
        finally:
            await writer.stop()
        assert writer.other_errors == []
        assert writer.refused > 0
        # Rebuilt from MySQL on first use, and kept current by the writes since.
        assert await served_totals(gql) == dict(writer.acknowledged)
        assert (await client.get("/readyz")).status_code == 200
    assert await process.terminate()
    assert await history_totals(mysql_database_url) == dict(writer.acknowledged)
