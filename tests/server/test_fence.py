"""The rebuild fence and dead instances, on real processes, a private Redis and a private
MariaDB (docs/reliability.md, "Fence" and "A dead instance")."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from datetime import timedelta

import httpx
import pytest
import redis.asyncio as redis_asyncio

from store.boards import parse_boards
from store.errors import RankingNotLoaded, StoreUnavailable
from store.redis import RedisRankingStore
from tests.support.graphql_client import GraphQLHttp
from tests.support.history_database import history_totals
from tests.support.metrics import metric
from tests.support.private_servers import PrivateMariaDB, PrivateRedis
from tests.support.service_fixtures import BOARDS, TOKEN, ProcessFactory
from tests.support.service_process import ServiceProcess
from tests.support.writer import Writer

pytestmark = pytest.mark.integration

PREFIX = "fence"


async def live_totals(redis_url: str) -> dict[str, int]:
    """The global board's current period as Redis holds it ({} while not loaded)."""
    boards = parse_boards(BOARDS)
    store = RedisRankingStore.from_url(
        redis_url, key_prefix=PREFIX, boards=boards, retention=timedelta(days=1)
    )
    try:
        return await store.totals("global", boards[0].current_period())
    except (RankingNotLoaded, StoreUnavailable):
        return {}
    finally:
        await store.close()


def environment(redis: PrivateRedis, database_url: str, **extra: str) -> dict[str, str]:
    """Two instances' shared environment: fast beats, a short death timeout."""
    return {
        "LEADERBOARD_REDIS_URL": redis.url(),
        "LEADERBOARD_KEY_PREFIX": PREFIX,
        "LEADERBOARD_DATABASE_URL": database_url,
        "LEADERBOARD_WRITE_TOKEN": TOKEN,
        "LEADERBOARD_BOARDS": BOARDS,
        "LEADERBOARD_HEARTBEAT_SECONDS": "0.1",
        "LEADERBOARD_HEARTBEAT_TIMEOUT_SECONDS": "3",
    } | extra


def writer_for(instance: ServiceProcess, concurrency: int, id_prefix: str) -> Writer:
    """A started write load on one instance."""
    client = httpx.AsyncClient(base_url=instance.url, timeout=60)
    writer = Writer(GraphQLHttp(client, token=TOKEN), concurrency=concurrency, id_prefix=id_prefix)
    writer.start()
    return writer


async def stop_writers(*writers: Writer) -> None:
    """Stop the loads and close their clients."""
    for writer in writers:
        await writer.stop()
        await writer.gql.client.aclose()


async def until(condition_name: str, check: object, timeout: float) -> None:
    """Poll an async predicate until it holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():  # type: ignore[operator]
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{condition_name} within {timeout} s")


async def test_redis_flushed_while_mysql_is_paused_drifts_nowhere(
    service_process: ProcessFactory,
    private_redis: PrivateRedis,
    private_mariadb: PrivateMariaDB,
) -> None:
    """Two instances hold acknowledged events in their buffers (MySQL paused) when Redis
    loses everything: the rebuild waits for both buffers (the fence), so once MySQL is
    back Redis = MySQL = acknowledged, with no manual step."""
    database_url = await private_mariadb.create_database("leaderboard")
    shared = environment(private_redis, database_url)
    instances = [service_process(shared), service_process(shared)]
    for instance in instances:
        await instance.start()
    writers = [writer_for(instance, 4, f"i{n}-") for n, instance in enumerate(instances)]
    for writer in writers:
        await writer.wait_for("accepted")
    assert private_mariadb.process is not None
    mariadb = private_mariadb.process.pid
    os.kill(mariadb, signal.SIGSTOP)
    try:
        # Acknowledged and buffered on both: the paused history holds the flush.
        totals_at_pause = [writer.total for writer in writers]
        for instance, writer, before in zip(instances, writers, totals_at_pause, strict=True):
            await until(
                "acknowledged events buffered",
                lambda i=instance, w=writer, b=before: _buffered_after(i, w, b),
                30,
            )
        client = redis_asyncio.Redis.from_url(private_redis.url())
        await client.flushall()
        await client.aclose()
        # Writes and rebuilds meet the loss while the history is still paused.
        await asyncio.sleep(1.0)
    finally:
        os.kill(mariadb, signal.SIGCONT)
    for writer in writers:
        await writer.wait_for("accepted", timeout=60)
    await asyncio.sleep(0.5)
    await stop_writers(*writers)
    for writer in writers:
        assert writer.other_errors == []
    acknowledged = writers[0].acknowledged + writers[1].acknowledged
    for instance in instances:
        assert await instance.terminate()  # drained: the history has every buffer
    assert await live_totals(private_redis.url()) == dict(acknowledged)
    assert await history_totals(database_url) == dict(acknowledged)


async def _buffered_after(instance: ServiceProcess, writer: Writer, before: int) -> bool:
    return writer.total > before and await metric(instance, "leaderboard_batcher_depth") > 0


@pytest.mark.parametrize("ack", ["buffered", "persisted"])
async def test_a_killed_instance_is_reconciled_by_a_survivor(
    service_process: ProcessFactory,
    private_redis: PrivateRedis,
    private_mariadb: PrivateMariaDB,
    ack: str,
) -> None:
    """SIGKILL under load leaves Redis ahead of MySQL (events applied whose flush died with
    the instance); within the heartbeat timeout plus one reconcile the survivor has put
    Redis back to MySQL's truth, and counted it on /metrics."""
    database_url = await private_mariadb.create_database("leaderboard")
    # A slow flush on the victim: the kill certainly loses applied events.
    shared = environment(private_redis, database_url, LEADERBOARD_ACK=ack)
    survivor = service_process(shared)
    victim = service_process(shared | {"LEADERBOARD_FLUSH_INTERVAL_MS": "1000"})
    await survivor.start()
    await victim.start()
    writers = [writer_for(survivor, 2, "s-"), writer_for(victim, 8, "v-")]
    for writer in writers:
        await writer.wait_for("accepted")
    await asyncio.sleep(1.0)
    await victim.kill()
    # The heartbeat timeout (3 s) plus one reconcile; the bound leaves room for a loaded
    # machine (no timed assert: the point is that nobody runs `leaderboard reconcile`).
    name = "leaderboard_dead_instances_reconciled_total"
    await until("the survivor reconciled", lambda: _at_least(survivor, name, 1), 60)
    await asyncio.sleep(0.5)  # the survivor's writes go on after the repair
    await stop_writers(*writers)
    assert writers[0].other_errors == []
    assert await survivor.terminate()
    live = await live_totals(private_redis.url())
    history = await history_totals(database_url)
    assert live == history
    if ack == "persisted":
        acknowledged = writers[0].acknowledged + writers[1].acknowledged
        assert all(history[name] >= total for name, total in acknowledged.items())


async def _at_least(instance: ServiceProcess, name: str, value: float) -> bool:
    return await metric(instance, name) >= value


async def test_an_instance_taken_for_dead_reconciles_what_it_flushes_late(
    service_process: ProcessFactory,
    private_redis: PrivateRedis,
    private_mariadb: PrivateMariaDB,
) -> None:
    """An instance stopped (SIGSTOP) past the heartbeat timeout is reaped by the survivor,
    whose rebuild cannot wait for its buffer; back, it writes that buffer, finds itself
    reaped and reconciles its periods again: Redis = MySQL = acknowledged."""
    database_url = await private_mariadb.create_database("leaderboard")
    shared = environment(private_redis, database_url)
    survivor = service_process(shared)
    stalled = service_process(shared | {"LEADERBOARD_FLUSH_INTERVAL_MS": "1000"})
    await survivor.start()
    await stalled.start()
    writers = [writer_for(survivor, 2, "s-"), writer_for(stalled, 8, "t-")]
    for writer in writers:
        await writer.wait_for("accepted")
    await asyncio.sleep(1.0)
    assert stalled.process is not None
    os.kill(stalled.process.pid, signal.SIGSTOP)
    try:
        name = "leaderboard_dead_instances_reconciled_total"
        await until("the survivor reconciled", lambda: _at_least(survivor, name, 1), 60)
    finally:
        os.kill(stalled.process.pid, signal.SIGCONT)
    await writers[1].wait_for("accepted", timeout=60)
    await stop_writers(*writers)
    for writer in writers:
        assert writer.other_errors == []
    # Its late flush, then its own reconcile (without it Redis stays short of MySQL).
    await until("Redis = MySQL", lambda: _in_step(private_redis, database_url), 60)
    for instance in (survivor, stalled):
        assert await instance.terminate()
    acknowledged = writers[0].acknowledged + writers[1].acknowledged
    assert await history_totals(database_url) == dict(acknowledged)
    assert await live_totals(private_redis.url()) == dict(acknowledged)


async def _in_step(redis: PrivateRedis, database_url: str) -> bool:
    return await live_totals(redis.url()) == await history_totals(database_url)


async def test_an_erasure_waits_for_the_other_instances_buffers(
    service_process: ProcessFactory,
    private_redis: PrivateRedis,
    private_mariadb: PrivateMariaDB,
) -> None:
    """A player's event acknowledged by another instance and still in its buffer (a flush
    interval of 10 s: far longer than the steps before the erasure, even on a loaded
    machine) when the erasure starts: the erasure's fence makes that instance write it
    first, and its second pass deletes it; nothing of the player is left anywhere."""
    database_url = await private_mariadb.create_database("leaderboard")
    admin_token = "fence-admin-token"
    shared = environment(private_redis, database_url, LEADERBOARD_ADMIN_TOKEN=admin_token)
    eraser = service_process(shared)
    holder = service_process(shared | {"LEADERBOARD_FLUSH_INTERVAL_MS": "10000"})
    await eraser.start()
    await holder.start()
    async with httpx.AsyncClient(base_url=holder.url, timeout=30) as client:
        written = await GraphQLHttp(client, token=TOKEN).data(
            'mutation { incrementScore(username: "eve", delta: 7) { score } }'
        )
    assert written["incrementScore"]["score"] == 7
    assert await metric(holder, "leaderboard_batcher_depth") == 1  # buffered, not written
    async with httpx.AsyncClient(base_url=eraser.url, timeout=30) as client:
        erased = await GraphQLHttp(client, token=admin_token).data(
            'mutation { erasePlayer(username: "eve") { eventsDeleted } }'
        )
    assert erased["erasePlayer"]["eventsDeleted"] == 1
    for instance in (eraser, holder):
        assert await instance.terminate()  # drained
    assert await history_totals(database_url) == {}
    assert await live_totals(private_redis.url()) == {}
