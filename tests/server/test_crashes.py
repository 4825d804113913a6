"""The service stopped or killed under write load: what survives, and how drift is repaired."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest

from store.boards import parse_boards
from store.redis import RedisRankingStore
from tests.support.cli import leaderboard
from tests.support.graphql_client import GraphQLHttp
from tests.support.history_database import history_event_ids, history_totals
from tests.support.service_fixtures import BOARDS, TOKEN, ProcessFactory
from tests.support.shared_services import REDIS_URL, delete_prefix
from tests.support.writer import Writer

pytestmark = pytest.mark.integration


async def live_totals(prefix: str) -> dict[str, int]:
    """The live ranking of the global board, read from Redis through the store."""
    boards = parse_boards(BOARDS)
    store = RedisRankingStore.from_url(
        REDIS_URL, key_prefix=prefix, boards=boards, retention=timedelta(days=1)
    )
    try:
        return await store.totals("global", boards[0].current_period())
    finally:
        await store.close()


async def run_load(process_url: str, *, seconds: float, concurrency: int) -> Writer:
    """Write for a while and return the writer (still running: the caller stops it)."""
    client = httpx.AsyncClient(base_url=process_url, timeout=30)
    writer = Writer(GraphQLHttp(client, token=TOKEN), concurrency=concurrency)
    writer.start()
    await writer.wait_for("accepted")
    await asyncio.sleep(seconds)
    return writer


async def test_sigterm_under_load_loses_nothing_acknowledged(
    service_process: ProcessFactory, redis_mysql_environment: dict[str, str]
) -> None:
    process = service_process(redis_mysql_environment)
    await process.start()
    writer = await run_load(process.url, seconds=1.0, concurrency=4)
    stopped = await process.terminate()
    await writer.stop()
    await writer.gql.client.aclose()
    assert stopped
    assert writer.other_errors == []
    assert writer.total > 0
    database_url = redis_mysql_environment["LEADERBOARD_DATABASE_URL"]
    assert await history_totals(database_url) == dict(writer.acknowledged)


async def test_sigkill_loses_at_most_the_buffer_and_reconcile_repairs(
    service_process: ProcessFactory, redis_mysql_environment: dict[str, str]
) -> None:
    # A slow flush keeps events in the buffer, so the kill certainly loses some.
    environment = redis_mysql_environment | {"LEADERBOARD_FLUSH_INTERVAL_MS": "1000"}
    process = service_process(environment)
    await process.start()
    writer = await run_load(process.url, seconds=1.5, concurrency=4)
    await process.kill()
    await writer.stop()
    await writer.gql.client.aclose()
    assert writer.other_errors == []

    database_url = environment["LEADERBOARD_DATABASE_URL"]
    prefix = environment["LEADERBOARD_KEY_PREFIX"]
    history = await history_totals(database_url)
    stored_ids = await history_event_ids(database_url)
    # Nothing invented, and what is missing is exactly acknowledged events never flushed.
    assert stored_ids <= writer.acknowledged_ids
    assert writer.acknowledged_ids - stored_ids, "the kill should have lost the buffer"
    # Redis kept every acknowledged increment (and may hold ones whose answer the kill cut).
    live = await live_totals(prefix)
    assert all(live[name] >= total for name, total in writer.acknowledged.items())

    code, output = await leaderboard(environment, "reconcile")
    assert code == 0, output
    assert "players corrected" in output
    assert "live " in output  # each corrected player is printed
    assert await live_totals(prefix) == history
    # A second pass finds nothing left to repair.
    code, output = await leaderboard(environment, "reconcile")
    assert "reconcile done, 0 players corrected" in output


async def test_persisted_acknowledgement_survives_sigkill(
    service_process: ProcessFactory, redis_mysql_environment: dict[str, str]
) -> None:
    environment = redis_mysql_environment | {
        "LEADERBOARD_ACK": "persisted",
        "LEADERBOARD_FLUSH_INTERVAL_MS": "200",
    }
    process = service_process(environment)
    await process.start()
    writer = await run_load(process.url, seconds=1.5, concurrency=16)
    await process.kill()
    await writer.stop()
    await writer.gql.client.aclose()
    assert writer.other_errors == []
    assert len(writer.acknowledged_ids) > 20
    stored_ids = await history_event_ids(environment["LEADERBOARD_DATABASE_URL"])
    assert writer.acknowledged_ids <= stored_ids


async def test_instances_starting_on_empty_redis_while_others_write(
    service_process: ProcessFactory, redis_mysql_environment: dict[str, str]
) -> None:
    environment = redis_mysql_environment
    writers_process = service_process(environment)
    await writers_process.start()
    writer = await run_load(writers_process.url, seconds=0.5, concurrency=4)
    # Redis loses everything while the writing instance keeps going, and four more
    # instances start at that moment: one rebuild, no double counting, no lost write.
    await delete_prefix(environment["LEADERBOARD_KEY_PREFIX"])
    newcomers = [service_process(environment) for _ in range(4)]
    await asyncio.gather(*(instance.start() for instance in newcomers))
    await asyncio.sleep(0.5)
    await writer.stop()
    await writer.gql.client.aclose()
    assert writer.other_errors == []
    for instance in [writers_process, *newcomers]:
        assert await instance.terminate()
    assert await live_totals(environment["LEADERBOARD_KEY_PREFIX"]) == dict(writer.acknowledged)
    assert await history_totals(environment["LEADERBOARD_DATABASE_URL"]) == dict(
        writer.acknowledged
    )
