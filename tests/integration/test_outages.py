"""Outages under write load: refused writes change nothing, acknowledged ones are kept, and
the service recovers by itself once the failed server is back."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter

import aiomysql
import httpx

from tests.api.test_operations import INCREMENT, TOP
from tests.integration.conftest import TOKEN, ProcessFactory
from tests.integration.test_serve import mysql_totals
from tests.support.graphql_client import GraphQLHttp
from tests.support.private_servers import PrivateMariaDB, PrivateRedis
from tests.support.shared_services import REDIS_URL

PLAYERS = [f"p{index}" for index in range(5)]


class Writer:
    """Sends increments one after another, recording what was acknowledged and refused."""

    def __init__(self, gql: GraphQLHttp) -> None:
        self.gql = gql
        self.acknowledged: Counter[str] = Counter()
        self.refused = 0
        self.other_errors: list[object] = []
        self._sequence = itertools.count()
        self._stopped = asyncio.Event()

    async def run(self) -> None:
        while not self._stopped.is_set():
            number = next(self._sequence)
            username = PLAYERS[number % len(PLAYERS)]
            delta = number % 3 + 1
            body = await self.gql.execute(
                INCREMENT, {"username": username, "delta": delta, "eventId": f"w{number}"}
            )
            if "errors" in body:
                codes = [error["extensions"]["code"] for error in body["errors"]]
                if codes == ["UNAVAILABLE"]:
                    self.refused += 1
                else:
                    self.other_errors.append(body)
            else:
                assert body["data"]["incrementScore"]["applied"] is True
                self.acknowledged[username] += delta
            await asyncio.sleep(0.005)

    def stop(self) -> None:
        self._stopped.set()

    async def wait_for(self, condition: str, timeout: float = 30.0) -> None:
        """Wait until writes are refused ('refused') or accepted ('accepted') again."""
        deadline = time.monotonic() + timeout
        start_refused = self.refused
        start_total = sum(self.acknowledged.values())
        while time.monotonic() < deadline:
            if condition == "refused" and self.refused > start_refused:
                return
            if condition == "accepted" and sum(self.acknowledged.values()) > start_total:
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"writes were not {condition} within {timeout} s")


async def served_totals(gql: GraphQLHttp) -> dict[str, int]:
    data = await gql.data(TOP, {"limit": 100})
    return {row["username"]: row["score"] for row in data["topPlayers"]}


async def history_totals(server: PrivateMariaDB, database: str) -> dict[str, int]:
    connection = await aiomysql.connect(
        host="127.0.0.1", port=server.port, user="root", db=database
    )
    try:
        async with connection.cursor() as cursor:
            await cursor.execute("SELECT username, SUM(delta) FROM score_events GROUP BY username")
            return {username: int(total) for username, total in await cursor.fetchall()}
    finally:
        connection.close()


async def test_mysql_outage_refuses_writes_then_recovers(
    service_process: ProcessFactory, private_mariadb: PrivateMariaDB, redis_prefix: str
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
    await process.start()
    async with httpx.AsyncClient(base_url=process.url, timeout=30) as client:
        gql = GraphQLHttp(client, token=TOKEN)
        writer = Writer(gql)
        writing = asyncio.create_task(writer.run())
        try:
            await writer.wait_for("accepted")
            await asyncio.sleep(0.3)
            await private_mariadb.stop()
            await writer.wait_for("refused")
            await asyncio.sleep(0.5)
            # Refused writes changed nothing: Redis holds exactly what was acknowledged.
            assert await served_totals(gql) == dict(writer.acknowledged)
            await private_mariadb.start()
            await writer.wait_for("accepted")
            await asyncio.sleep(0.3)
        finally:
            writer.stop()
            await writing
        assert writer.other_errors == []
        assert writer.refused > 0
        assert await served_totals(gql) == dict(writer.acknowledged)
    assert await process.terminate()
    assert await history_totals(private_mariadb, database) == dict(writer.acknowledged)


async def test_redis_killed_and_back_empty_is_rebuilt_without_restart(
    service_process: ProcessFactory, private_redis: PrivateRedis, mysql_database_url: str
) -> None:
    process = service_process(
        {
            "LEADERBOARD_REDIS_URL": private_redis.url(),
            "LEADERBOARD_DATABASE_URL": mysql_database_url,
            "LEADERBOARD_WRITE_TOKEN": TOKEN,
            "LEADERBOARD_REBUILD_SETTLE_SECONDS": "0.2",
        }
    )
    await process.start()
    async with httpx.AsyncClient(base_url=process.url, timeout=30) as client:
        gql = GraphQLHttp(client, token=TOKEN)
        writer = Writer(gql)
        writing = asyncio.create_task(writer.run())
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
            writer.stop()
            await writing
        assert writer.other_errors == []
        assert writer.refused > 0
        # Rebuilt from MySQL on first use, and kept current by the writes since.
        assert await served_totals(gql) == dict(writer.acknowledged)
        assert (await client.get("/readyz")).status_code == 200
    assert await process.terminate()
    assert await mysql_totals(mysql_database_url) == dict(writer.acknowledged)
