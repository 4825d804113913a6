"""What only the Redis store has: its key layout, expiry, lost data, outages, restarts."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import orjson
import pytest
import redis.asyncio as redis_asyncio
from redis import exceptions as redis_errors

from store.errors import RankingNotLoaded, StoreUnavailable
from store.models import ScoreChange
from store.redis import RedisRankingStore
from tests.support.ranking import (
    BOARDS,
    GLOBAL,
    NOT_LOADED_OPERATIONS,
    PERIOD,
    SHARDED_BOARDS,
    ChangeFeed,
    inc,
    of_writer,
)
from tests.support.shared_services import REDIS_URL, delete_prefix

pytestmark = pytest.mark.integration

RETENTION = timedelta(days=35)


WINDOW_MS = 86_400_000
"""The default idempotency window."""


class Frozen:
    """The store's clock, frozen at the test's start: the idempotency window's bucket
    names and expiries are computed from it."""

    now = time.time()

    @classmethod
    def bucket(cls) -> int:
        """The window's current bucket."""
        return int(cls.now * 1000) // WINDOW_MS


@pytest.fixture
async def store(redis_prefix: str) -> AsyncIterator[RedisRankingStore]:
    """A Redis store under the test's private key prefix."""
    Frozen.now = time.time()
    ranking = RedisRankingStore.from_url(
        REDIS_URL,
        key_prefix=redis_prefix,
        boards=BOARDS,
        retention=RETENTION,
        clock=lambda: Frozen.now,
    )
    yield ranking
    await ranking.close()


def event_ids(prefix: str, board: str, period: str) -> str:
    """The event-id bucket of the idempotency window that writes go to now."""
    return key(prefix, board, period, f"eventids:{Frozen.bucket()}")


async def assert_expires_with_the_window(raw: redis_asyncio.Redis, name: str) -> None:
    """`name` expires two windows after its bucket began, whatever its period."""
    # Set by PEXPIRE from the frozen clock: Redis' own clock has moved on a little since.
    assert abs(await raw.pexpiretime(name) - (Frozen.bucket() + 2) * WINDOW_MS) < 60_000


@pytest.fixture
async def raw() -> AsyncIterator[redis_asyncio.Redis]:
    """A plain client on the same Redis, to look at the keys."""
    client = redis_asyncio.Redis.from_url(REDIS_URL, decode_responses=True)
    yield client
    await client.aclose()


def key(prefix: str, board: str, period: str, kind: str) -> str:
    """The documented key layout."""
    return f"{prefix}:{{{board}|{period}}}:{kind}"


def unix_ms(moment: datetime) -> int:
    """Milliseconds since the epoch."""
    return int(moment.timestamp() * 1000)


async def test_lost_keys_mean_not_loaded(store: RedisRankingStore, redis_prefix: str) -> None:
    await store.load(GLOBAL, PERIOD, [("alice", 1)], [])
    assert await store.top(GLOBAL, PERIOD, 10, 0) != []
    await delete_prefix(redis_prefix)  # what a FLUSHALL or a restart without persistence does
    assert not await store.is_loaded(GLOBAL, PERIOD)
    for operation in NOT_LOADED_OPERATIONS.values():
        with pytest.raises(RankingNotLoaded):
            await operation(store)


async def test_only_the_marker_makes_a_period_loaded(
    store: RedisRankingStore, raw: redis_asyncio.Redis, redis_prefix: str
) -> None:
    await store.load(GLOBAL, PERIOD, [("alice", 1)], [])
    await raw.delete(key(redis_prefix, GLOBAL, PERIOD, "loaded"))
    with pytest.raises(RankingNotLoaded):
        await store.top(GLOBAL, PERIOD, 10, 0)


async def test_layout_and_scores_stored_negated(
    store: RedisRankingStore, raw: redis_asyncio.Redis, redis_prefix: str
) -> None:
    await store.load(GLOBAL, PERIOD, [("alice", 2), ("bob", 7)], [("alice", "e1", 2)])
    await store.increment([inc("carol", 3, "e2"), inc("alice", 1)])
    ranking = key(redis_prefix, GLOBAL, PERIOD, "ranking")
    assert await raw.zrange(ranking, 0, -1, withscores=True) == [
        ("bob", -7.0),
        ("alice", -3.0),
        ("carol", -3.0),
    ]
    # Each client event id bound to its increment's fingerprint, "<delta>:<username>".
    # ...in the idempotency window's current bucket.
    assert await raw.hgetall(event_ids(redis_prefix, GLOBAL, PERIOD)) == {
        "e1": "2:alice",
        "e2": "3:carol",
    }
    # Only these keys: the load's temporary keys are gone, generated event ids not stored.
    assert sorted([name async for name in raw.scan_iter(match=f"{redis_prefix}:*")]) == sorted(
        [
            key(redis_prefix, GLOBAL, PERIOD, "ranking"),
            key(redis_prefix, GLOBAL, PERIOD, "loaded"),
            event_ids(redis_prefix, GLOBAL, PERIOD),
        ]
    )


async def test_a_period_expires_its_retention_after_it_ends(
    store: RedisRankingStore, raw: redis_asyncio.Redis, redis_prefix: str
) -> None:
    period = "2999-01"
    await store.load(GLOBAL, period, [("alice", 1)], [("alice", "e1", 1)])
    expected = unix_ms(datetime(2999, 2, 1, tzinfo=UTC) + RETENTION)
    for kind in ("ranking", "loaded"):
        assert await raw.pexpiretime(key(redis_prefix, GLOBAL, period, kind)) == expected
    # The event ids expire with the idempotency window, not the period.
    await assert_expires_with_the_window(raw, event_ids(redis_prefix, GLOBAL, period))


async def test_keys_an_increment_creates_expire_too(
    store: RedisRankingStore, raw: redis_asyncio.Redis, redis_prefix: str
) -> None:
    period = "2999-01"
    await store.load(GLOBAL, period, [], [])  # no ranking, no event set yet
    await store.increment([inc("alice", 1, "e1", period=period)])
    expected = unix_ms(datetime(2999, 2, 1, tzinfo=UTC) + RETENTION)
    assert await raw.pexpiretime(key(redis_prefix, GLOBAL, period, "ranking")) == expected
    await assert_expires_with_the_window(raw, event_ids(redis_prefix, GLOBAL, period))


async def test_the_writers_hash_expires_with_the_period(
    store: RedisRankingStore, raw: redis_asyncio.Redis, redis_prefix: str
) -> None:
    # Idempotency per writer: the last sequences live as long as the ranking, no window.
    period = "2999-01"
    await store.load(GLOBAL, period, [], [])
    await store.increment(of_writer("gs-1", 41, inc("alice", 1, period=period)))
    await store.increment(of_writer("gs-2", 7, inc("bob", 1, period=period)))
    writers = key(redis_prefix, GLOBAL, period, "writers")
    assert await raw.hgetall(writers) == {"gs-1": "41", "gs-2": "7"}
    expected = unix_ms(datetime(2999, 2, 1, tzinfo=UTC) + RETENTION)
    assert await raw.pexpiretime(writers) == expected
    # A load restores them with the same expiry; on a board that never resets, none.
    await store.load(GLOBAL, period, [("alice", 1)], [], writers=[("gs-1", 2**53 - 1)])
    assert await raw.hgetall(writers) == {"gs-1": str(2**53 - 1)}
    assert await raw.pexpiretime(writers) == expected
    await store.load("alltime", "all", [], [])
    await store.increment(of_writer("gs-1", 1, inc("bob", 1, board="alltime", period="all")))
    assert await raw.ttl(key(redis_prefix, "alltime", "all", "writers")) == -1


async def test_a_long_past_period_is_kept_an_hour(
    store: RedisRankingStore, raw: redis_asyncio.Redis, redis_prefix: str
) -> None:
    await store.load("daily", "2020-01-01", [("alice", 1)], [])
    ttl = await raw.pttl(key(redis_prefix, "daily", "2020-01-01", "ranking"))
    assert 3_590_000 < ttl <= 3_600_000


async def test_a_board_that_never_resets_never_expires(
    store: RedisRankingStore, raw: redis_asyncio.Redis, redis_prefix: str
) -> None:
    await store.load("alltime", "all", [("alice", 1)], [("alice", "e1", 1)])
    await store.increment([inc("bob", 1, "e2", board="alltime", period="all")])
    for kind in ("ranking", "loaded"):
        assert await raw.ttl(key(redis_prefix, "alltime", "all", kind)) == -1
    # ...but its event ids do, with the idempotency window: memory is rate x window.
    assert await raw.hgetall(event_ids(redis_prefix, "alltime", "all")) == {
        "e1": "1:alice",
        "e2": "1:bob",
    }
    await assert_expires_with_the_window(raw, event_ids(redis_prefix, "alltime", "all"))


async def test_a_malformed_message_is_skipped(
    store: RedisRankingStore, raw: redis_asyncio.Redis, redis_prefix: str
) -> None:
    await store.load(GLOBAL, PERIOD, [], [])
    feed = ChangeFeed(store)
    try:
        await feed.ready()
        await raw.publish(f"{redis_prefix}:changes:{GLOBAL}", b"not json")
        await raw.publish(f"{redis_prefix}:changes:{GLOBAL}", b'{"board": "global"}')
        await store.increment([inc("alice", 1)])
        assert (await feed.next()).username == "alice"
    finally:
        await feed.close()


async def test_a_batch_is_published_as_one_message_per_board(
    store: RedisRankingStore, raw: redis_asyncio.Redis, redis_prefix: str
) -> None:
    await store.load(GLOBAL, PERIOD, [], [])
    listener = raw.pubsub()
    await listener.subscribe(f"{redis_prefix}:changes:{GLOBAL}")
    # The raw listener stands for another instance's consumer, which holds the board.
    await store.watch(GLOBAL)
    try:
        assert (await listener.get_message(timeout=2.0))["type"] == "subscribe"
        await store.increment([inc("alice", 1), inc("bob", 2), inc("alice", 3)])
        message = await listener.get_message(timeout=2.0)
        assert message is not None
        changes = orjson.loads(message["data"])
        assert [(c["username"], c["score"]) for c in changes] == [
            ("alice", 1),
            ("bob", 2),
            ("alice", 4),
        ]
        assert await listener.get_message(timeout=0.2) is None
    finally:
        await listener.aclose()  # type: ignore[no-untyped-call, unused-ignore]


async def test_closing_the_feed_unsubscribes(
    store: RedisRankingStore, raw: redis_asyncio.Redis, redis_prefix: str
) -> None:
    channel = f"{redis_prefix}:changes:{GLOBAL}"
    feed = ChangeFeed(store)
    await feed.ready()
    assert await raw.pubsub_numsub(channel) == [(channel, 1)]
    await feed.close()
    # Redis notices the closed connection soon after.
    for _ in range(500):
        if await raw.pubsub_numsub(channel) == [(channel, 0)]:
            break
        await asyncio.sleep(0.01)
    else:
        pytest.fail("still subscribed")


async def test_an_unreachable_redis_is_unavailable() -> None:
    store = RedisRankingStore.from_url(
        "redis://127.0.0.1:1/0", key_prefix="lbtest", boards=BOARDS, retention=RETENTION
    )
    try:
        with pytest.raises(StoreUnavailable):
            await store.ping()
        with pytest.raises(StoreUnavailable):
            await store.is_loaded(GLOBAL, PERIOD)
        with pytest.raises(StoreUnavailable):
            await store.claim_rebuild(GLOBAL, PERIOD, 1)
        with pytest.raises(StoreUnavailable):
            await store.load(GLOBAL, PERIOD, [("alice", 1)], [])
        for operation in NOT_LOADED_OPERATIONS.values():
            with pytest.raises(StoreUnavailable):
                await operation(store)
    finally:
        await store.close()


class PrivateRedis:
    """A redis-server of the test's own, on a free port, that the test may stop and restart."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        """Start the server (empty: no persistence) and wait until it answers."""
        self._process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self._directory)],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis_asyncio.Redis.from_url(self.url)
        try:
            async with asyncio.timeout(10):
                while True:
                    try:
                        await client.ping()
                        return
                    except redis_errors.ConnectionError:
                        await asyncio.sleep(0.02)
        finally:
            await client.aclose()

    def stop(self) -> None:
        """Stop the server; its data is gone."""
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None


@pytest.fixture
async def private_redis(tmp_path: Path) -> AsyncIterator[PrivateRedis]:
    """A private Redis server, stopped after the test."""
    server = PrivateRedis(tmp_path)
    try:
        await server.start()
        yield server
    finally:
        server.stop()


async def test_a_restart_is_survived(private_redis: PrivateRedis) -> None:
    store = RedisRankingStore.from_url(
        private_redis.url, key_prefix="lbtest", boards=BOARDS, retention=RETENTION
    )
    feed = ChangeFeed(store)
    try:
        await store.load(GLOBAL, PERIOD, [("alice", 1)], [])
        await feed.ready()

        private_redis.stop()
        with pytest.raises(StoreUnavailable):
            await store.ping()
        with pytest.raises(StoreUnavailable):
            await store.increment([inc("alice", 1)])

        await private_redis.start()
        # The data and the cached scripts are gone.
        with pytest.raises(RankingNotLoaded):
            await store.increment([inc("alice", 1)])
        await store.load(GLOBAL, PERIOD, [("alice", 1)], [])
        await feed.ready()  # the same iterator resubscribed on its own
        [outcome] = await store.increment([inc("bob", 5, "e1")])
        assert (outcome.score, outcome.rank) == (5, 1)
        change = await feed.next()
        assert (change.username, change.score, change.rank) == ("bob", 5, 1)
    finally:
        await feed.close()
        await store.close()


CANCEL_DELAYS = [step / 10_000 for step in range(30)]
"""0 to 3 ms, so that some cancellations land while redis-py connects and sends."""


def fresh_store(prefix: str) -> RedisRankingStore:
    """A store on a client not connected yet."""
    return RedisRankingStore.from_url(
        REDIS_URL, key_prefix=prefix, boards=BOARDS, retention=RETENTION
    )


async def test_a_cancelled_call_ends_cancelled(store: RedisRankingStore, redis_prefix: str) -> None:
    await store.load(GLOBAL, PERIOD, [("alice", 1)], [])
    for delay in CANCEL_DELAYS:
        fresh = fresh_store(redis_prefix)
        call = asyncio.create_task(fresh.player_count(GLOBAL, PERIOD))
        await asyncio.sleep(delay)
        if call.cancel():
            await asyncio.gather(call, return_exceptions=True)
            assert call.cancelled(), f"the cancellation after {delay * 1000} ms was lost"
        await fresh.close()


async def test_a_cancelled_feed_ends_at_once(redis_prefix: str) -> None:
    for delay in CANCEL_DELAYS:
        fresh = fresh_store(redis_prefix)
        feed = cast(AsyncGenerator[ScoreChange, None], fresh.changes(GLOBAL))

        async def first_change() -> ScoreChange:
            return await anext(feed)  # noqa: B023 - awaited within this iteration

        consumer = asyncio.create_task(first_change())
        await asyncio.sleep(delay)
        consumer.cancel()
        async with asyncio.timeout(2):
            await asyncio.gather(consumer, return_exceptions=True)
        assert consumer.cancelled(), f"the cancellation after {delay * 1000} ms was lost"
        await feed.aclose()
        await fresh.close()


async def test_a_sharded_period_that_lost_one_shard_is_unloaded_whole(
    redis_prefix: str, raw: redis_asyncio.Redis
) -> None:
    sharded = RedisRankingStore.from_url(
        REDIS_URL,
        key_prefix=redis_prefix,
        boards=[SHARDED_BOARDS[0]],
        retention=RETENTION,
    )
    try:
        names = [f"player{index}" for index in range(40)]
        await sharded.load(GLOBAL, PERIOD, [(name, 1) for name in names], [])
        assert await sharded.is_loaded(GLOBAL, PERIOD)
        # One node lost its data: shard 0's marker (and ranking) are gone.
        await raw.delete(f"{redis_prefix}:{{{GLOBAL}|{PERIOD}|0}}:loaded")
        assert not await sharded.is_loaded(GLOBAL, PERIOD)
        # The other shards are unloaded too: a write to any of them waits for the rebuild
        # instead of landing in a shard the rebuild will replace.
        survivor = next(name for name in names if SHARDED_BOARDS[0].shard_of(name) != 0)
        with pytest.raises(RankingNotLoaded):
            await sharded.increment([inc(survivor, 1)])
        assert not [key async for key in raw.scan_iter(f"{redis_prefix}:*:loaded")]
    finally:
        await sharded.close()


async def test_an_empty_period_that_is_not_live_leaves_no_lasting_state(
    store: RedisRankingStore, raw: redis_asyncio.Redis, redis_prefix: str
) -> None:
    # What a read of a far period loads: nothing. Only the marker, for a minute.
    for period in ("2999-01", "2001-01"):
        await store.load(GLOBAL, period, [], [])
    names = sorted([name async for name in raw.scan_iter(match=f"{redis_prefix}:*")])
    assert names == sorted(key(redis_prefix, GLOBAL, p, "loaded") for p in ("2001-01", "2999-01"))
    for name in names:
        assert 0 < await raw.pttl(name) <= 60_000
    # The first write gives the marker the period's own expiry.
    await store.increment([inc("alice", 1, "e1", period="2999-01")])
    expected = unix_ms(datetime(2999, 2, 1, tzinfo=UTC) + RETENTION)
    for kind in ("ranking", "loaded"):
        assert await raw.pexpiretime(key(redis_prefix, GLOBAL, "2999-01", kind)) == expected
    await assert_expires_with_the_window(raw, event_ids(redis_prefix, GLOBAL, "2999-01"))


async def test_an_empty_live_period_keeps_the_period_expiry(
    store: RedisRankingStore, raw: redis_asyncio.Redis, redis_prefix: str
) -> None:
    board = BOARDS[0]
    period = board.current_period()
    await store.load(GLOBAL, period, [], [])
    end = datetime.fromisoformat(f"{period}-01").replace(tzinfo=UTC)
    end = (end + timedelta(days=32)).replace(day=1)
    expected = unix_ms(end + RETENTION)
    assert await raw.pexpiretime(key(redis_prefix, GLOBAL, period, "loaded")) == expected


async def test_a_sharded_empty_period_that_is_not_live_leaves_no_lasting_state(
    raw: redis_asyncio.Redis, redis_prefix: str
) -> None:
    store = RedisRankingStore.from_url(
        REDIS_URL, key_prefix=redis_prefix, boards=SHARDED_BOARDS, retention=RETENTION
    )
    try:
        await store.load(GLOBAL, "2999-01", [], [])
        assert await store.is_loaded(GLOBAL, "2999-01")
        names = [name async for name in raw.scan_iter(match=f"{redis_prefix}:*")]
        assert len(names) == 5  # four shard markers and the board period's event-id record
        for name in names:
            assert 0 < await raw.pttl(name) <= 60_000
        # A write extends what it writes to the period's expiry, the record included.
        await store.increment([inc("alice", 1, "e1", period="2999-01")])
        expected = unix_ms(datetime(2999, 2, 1, tzinfo=UTC) + RETENTION)
        assert await raw.pexpiretime(key(redis_prefix, GLOBAL, "2999-01", "eventids")) == expected
    finally:
        await store.close()
