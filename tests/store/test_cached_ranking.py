"""The top() cache over the real Redis store: hits, the bound, single flight, invalidation.

A second `RedisRankingStore` on the same Redis and key prefix plays another instance of
the service: its writes reach this instance's cache only through pub/sub. Writes made
"behind the cache's back" with a plain client publish nothing: only the bound can show them.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

import pytest
import redis.asyncio as redis_asyncio

from store.cached_ranking import TopCache
from store.errors import RankingNotLoaded, StoreUnavailable
from store.models import RankedPlayer, ScoreIncrement
from store.redis import RedisRankingStore
from tests.support.manual_clock import ManualClock
from tests.support.ranking import BOARDS, GLOBAL, PERIOD
from tests.support.shared_services import REDIS_URL

pytestmark = pytest.mark.integration

RETENTION = timedelta(days=35)
STALENESS = 0.1
TIMEOUT = 5.0
TEN_PLAYERS = {name: 100 - 10 * index for index, name in enumerate("abcdefghij")}
"""Ranks 1..10: a 100, b 90, ..., j 10."""


def redis_store(prefix: str) -> RedisRankingStore:
    """A Redis ranking store on the shared Redis under the test's prefix."""
    return RedisRankingStore.from_url(
        REDIS_URL, key_prefix=prefix, boards=BOARDS, retention=RETENTION
    )


@pytest.fixture
def clock() -> ManualClock:
    """The cache's clock."""
    return ManualClock()


@pytest.fixture
async def cached(redis_prefix: str, clock: ManualClock) -> AsyncIterator[TopCache]:
    """This instance's store: the cache over Redis, the test period holding ten players."""
    inner = redis_store(redis_prefix)
    store = TopCache(inner, STALENESS, clock=clock)
    await store.load(GLOBAL, PERIOD, TEN_PLAYERS.items(), [])
    yield store
    await store.close()
    await inner.close()


@pytest.fixture
async def other(redis_prefix: str) -> AsyncIterator[RedisRankingStore]:
    """Another instance's store on the same Redis."""
    store = redis_store(redis_prefix)
    yield store
    await store.close()


@pytest.fixture
async def raw() -> AsyncIterator[redis_asyncio.Redis]:
    """A plain client, to change a ranking without publishing anything."""
    client = redis_asyncio.Redis.from_url(REDIS_URL, decode_responses=True)
    yield client
    await client.aclose()


def inc(username: str, delta: int) -> ScoreIncrement:
    """An increment of the test period with a generated event id."""
    return ScoreIncrement(
        board=GLOBAL,
        period=PERIOD,
        username=username,
        delta=delta,
        event_id=f"~{uuid.uuid4().hex}",
        client_event_id=False,
    )


def names(players: list[RankedPlayer]) -> list[str]:
    """Usernames in order."""
    return [player.username for player in players]


async def add_silently(raw: redis_asyncio.Redis, prefix: str, username: str, score: int) -> None:
    """Give a player a score straight in the sorted set (scores are stored negated)."""
    await raw.zadd(f"{prefix}:{{{GLOBAL}|{PERIOD}}}:ranking", {username: -score})


async def until(condition: Callable[[], Awaitable[bool]], timeout: float = TIMEOUT) -> float:
    """Poll until the condition holds; the seconds it took (fails the test after `timeout`).

    The cache exposes no event for "a change was applied": what it serves is what counts.
    """
    started = time.perf_counter()
    async with asyncio.timeout(timeout):
        while True:
            if await condition():
                return time.perf_counter() - started
            await asyncio.sleep(0.002)


async def subscribed(raw: redis_asyncio.Redis, prefix: str) -> None:
    """Wait until the cache's background feed listens to the board's channel."""
    channel = f"{prefix}:changes:{GLOBAL}"

    async def listening() -> bool:
        return bool(await raw.pubsub_numsub(channel) == [(channel, 1)])

    await until(listening)


async def test_hits_within_the_bound_do_not_read_redis(
    cached: TopCache, raw: redis_asyncio.Redis, redis_prefix: str, clock: ManualClock
) -> None:
    first = await cached.top(GLOBAL, PERIOD, 10, 0)
    assert names(first)[:3] == ["a", "b", "c"]
    await add_silently(raw, redis_prefix, "zed", 1000)
    clock.advance(STALENESS * 0.9)
    for _ in range(100):
        assert await cached.top(GLOBAL, PERIOD, 10, 0) == first
    assert (cached.inner_reads, cached.hits, cached.misses) == (1, 100, 1)
    clock.advance(STALENESS * 0.1)
    assert names(await cached.top(GLOBAL, PERIOD, 10, 0))[:2] == ["zed", "a"]
    assert cached.inner_reads == 2


async def test_the_bound_on_the_real_clock(redis_prefix: str, raw: redis_asyncio.Redis) -> None:
    inner = redis_store(redis_prefix)
    store = TopCache(inner, STALENESS)
    try:
        await store.load(GLOBAL, PERIOD, TEN_PLAYERS.items(), [])
        await store.top(GLOBAL, PERIOD, 3, 0)
        await add_silently(raw, redis_prefix, "zed", 1000)
        await asyncio.sleep(STALENESS)  # time passing is what is tested
        assert names(await store.top(GLOBAL, PERIOD, 3, 0)) == ["zed", "a", "b"]
        assert store.inner_reads == 2
    finally:
        await store.close()
        await inner.close()


async def test_a_read_storm_is_one_redis_read(cached: TopCache) -> None:
    results = await asyncio.gather(*(cached.top(GLOBAL, PERIOD, 10, 0) for _ in range(200)))
    assert all(result == results[0] for result in results)
    assert names(results[0]) == list("abcdefghij")
    assert (cached.inner_reads, cached.misses, cached.hits) == (1, 200, 0)


async def test_an_own_write_is_read_back_at_once(cached: TopCache, clock: ManualClock) -> None:
    assert names(await cached.top(GLOBAL, PERIOD, 3, 0)) == ["a", "b", "c"]
    await cached.increment([inc("j", 1000)])
    assert names(await cached.top(GLOBAL, PERIOD, 3, 0)) == ["j", "a", "b"]
    await cached.increment([inc("a", -1000)])
    assert names(await cached.top(GLOBAL, PERIOD, 3, 0)) == ["j", "b", "c"]
    assert cached.inner_reads == 3


async def test_an_own_write_below_the_window_keeps_it(cached: TopCache) -> None:
    await cached.top(GLOBAL, PERIOD, 3, 0)
    [outcome] = await cached.increment([inc("newcomer", 1)])
    assert outcome.rank == 11
    await cached.top(GLOBAL, PERIOD, 3, 0)
    # Its change event comes back through pub/sub too, and is below the window as well.
    assert cached.inner_reads == 1


async def test_a_write_on_another_instance_arrives_by_pub_sub(
    cached: TopCache,
    other: RedisRankingStore,
    raw: redis_asyncio.Redis,
    redis_prefix: str,
) -> None:
    # The clock never moves: only the change event can refresh the snapshot.
    assert names(await cached.top(GLOBAL, PERIOD, 3, 0)) == ["a", "b", "c"]
    await subscribed(raw, redis_prefix)
    await other.increment([inc("j", 1000)])

    async def refreshed() -> bool:
        return names(await cached.top(GLOBAL, PERIOD, 3, 0)) == ["j", "a", "b"]

    seconds = await until(refreshed)
    # The event arrives in about a millisecond; the bound (0.1 s) leaves room for a busy machine.
    assert seconds < STALENESS * 10
    assert cached.invalidations >= 1
    assert cached.inner_reads >= 2


async def test_a_write_below_the_window_on_another_instance_keeps_it(
    cached: TopCache,
    other: RedisRankingStore,
    raw: redis_asyncio.Redis,
    redis_prefix: str,
) -> None:
    await cached.top(GLOBAL, PERIOD, 3, 0)
    await subscribed(raw, redis_prefix)
    await other.increment([inc("newcomer", 1)])  # rank 11
    await other.increment([inc("c", 1000)])  # rank 1: the event after it
    reads_before = cached.inner_reads

    async def refreshed() -> bool:
        return names(await cached.top(GLOBAL, PERIOD, 3, 0)) == ["c", "a", "b"]

    await until(refreshed)
    # Pub/sub keeps order: the first event was handled first, and dropped nothing.
    assert cached.invalidations == 1
    assert cached.inner_reads == reads_before + 1


async def test_failed_reads_are_not_cached(cached: TopCache) -> None:
    missing = "2026-01"
    results = await asyncio.gather(
        *(cached.top(GLOBAL, missing, 10, 0) for _ in range(20)), return_exceptions=True
    )
    assert all(isinstance(result, RankingNotLoaded) for result in results)
    assert cached.inner_reads == 1  # the storm shared one failed read
    with pytest.raises(RankingNotLoaded):
        await cached.top(GLOBAL, missing, 10, 0)
    assert cached.inner_reads == 2
    await cached.load(GLOBAL, missing, [("ann", 5)], [])
    assert names(await cached.top(GLOBAL, missing, 10, 0)) == ["ann"]


async def test_an_unreachable_redis_is_unavailable_every_time() -> None:
    inner = RedisRankingStore.from_url(
        "redis://127.0.0.1:1/0", key_prefix="lbtest", boards=BOARDS, retention=RETENTION
    )
    store = TopCache(inner, STALENESS)
    try:
        for _ in range(2):
            with pytest.raises(StoreUnavailable):
                await store.top(GLOBAL, PERIOD, 10, 0)
        assert store.inner_reads == 2
    finally:
        await store.close()
        await inner.close()
