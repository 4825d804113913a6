"""Both rate limiters, on real time: in process, and on the real Redis (the Lua script)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as redis_asyncio

from store.errors import StoreUnavailable
from store.rate_limits import InProcessRateLimiter, Rate, RateLimiter, gcra
from store.redis.rate_limits import RedisRateLimiter
from tests.support.redis_cluster import PrivateRedisCluster
from tests.support.shared_services import REDIS_URL

pytestmark = pytest.mark.integration

HOURLY = Rate(count=1, period_seconds=3600, burst=4)
"""Nothing refills while a test runs: every decision is the burst's."""
FAST = Rate(count=20, period_seconds=1, burst=2)
"""One more request every 50 ms."""


@pytest.fixture(params=["in-process", "redis", "redis-cluster"])
async def limiter(request: pytest.FixtureRequest, redis_prefix: str) -> AsyncIterator[RateLimiter]:
    backend: RateLimiter
    if request.param == "redis":
        backend = RedisRateLimiter.from_url(REDIS_URL, key_prefix=redis_prefix)
    elif request.param == "redis-cluster":
        cluster: PrivateRedisCluster = request.getfixturevalue("redis_cluster")
        backend = RedisRateLimiter.from_url(cluster.url(), key_prefix=redis_prefix, cluster=True)
    else:
        backend = InProcessRateLimiter()
    yield backend
    await backend.close()


async def allowed_in_a_row(limiter: RateLimiter, key: str, rate: Rate, tries: int) -> list[bool]:
    return [(await limiter.check(key, rate)).allowed for _ in range(tries)]


async def test_the_burst_passes_then_the_client_waits_one_interval(limiter: RateLimiter) -> None:
    assert await allowed_in_a_row(limiter, "a", HOURLY, 6) == [True] * 4 + [False] * 2
    refused = await limiter.check("a", HOURLY)
    # What gcra() says for the same arrivals (give or take the time the calls took).
    expected, _ = gcra(HOURLY.interval_us * 4, 0, HOURLY.interval_us, HOURLY.burst)
    assert expected.retry_after_us - 1_000_000 < refused.retry_after_us <= expected.retry_after_us
    # Another client's bucket is its own.
    assert await allowed_in_a_row(limiter, "b", HOURLY, 5) == [True] * 4 + [False]


async def test_a_refused_client_gets_in_again_after_the_interval(limiter: RateLimiter) -> None:
    assert await allowed_in_a_row(limiter, "c", FAST, 3) == [True, True, False]
    await asyncio.sleep(0.06)
    assert await allowed_in_a_row(limiter, "c", FAST, 2) == [True, False]


async def test_redis_holds_a_bucket_only_while_it_holds_a_request_back(redis_prefix: str) -> None:
    limiter = RedisRateLimiter.from_url(REDIS_URL, key_prefix=redis_prefix)
    client = redis_asyncio.Redis.from_url(REDIS_URL)
    try:
        await limiter.check("d", FAST)
        (key,) = [key async for key in client.scan_iter(match=f"{redis_prefix}:rate:*")]
        assert key == f"{redis_prefix}:rate:d".encode()
        assert 0 < await client.pttl(key) <= 50
        await asyncio.sleep(0.1)
        assert not await client.exists(key)
    finally:
        await client.aclose()
        await limiter.close()


async def test_checks_made_together_are_decided_in_turn(limiter: RateLimiter) -> None:
    # On one Redis these share a script call (on a cluster they go alone, several at once);
    # either way each check sees the ones decided before it: exactly the burst passes.
    keys = "xyxyxyxyxyxy"
    decisions = await asyncio.gather(*(limiter.check(key, HOURLY) for key in keys))
    for key in "xy":
        allowed = [d.allowed for k, d in zip(keys, decisions, strict=True) if k == key]
        assert sorted(allowed, reverse=True) == [True] * 4 + [False] * 2


async def test_two_clients_of_one_redis_share_the_buckets(redis_prefix: str) -> None:
    first = RedisRateLimiter.from_url(REDIS_URL, key_prefix=redis_prefix)
    second = RedisRateLimiter.from_url(REDIS_URL, key_prefix=redis_prefix)
    try:
        decisions = await asyncio.gather(
            *(limiter.check("shared", HOURLY) for limiter in (first, second) * 4)
        )
        assert sum(decision.allowed for decision in decisions) == HOURLY.burst
    finally:
        await first.close()
        await second.close()


async def test_an_unreachable_redis_is_store_unavailable() -> None:
    limiter = RedisRateLimiter.from_url("redis://127.0.0.1:9/0", key_prefix="x")
    try:
        with pytest.raises(StoreUnavailable):
            await limiter.check("e", HOURLY)
    finally:
        await limiter.close()
