"""The instance registry's scripts (store/redis/instances.py) on a real Redis and a real
Redis Cluster: registration and deadlines, fences, one claim per dead instance, dirty
board periods that a late retirement cannot drop, a registry lost with Redis's data."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import redis.asyncio as redis_asyncio
from redis.crc import key_slot

from store.redis import RedisRankingStore
from store.redis.instances import RedisInstances
from store.redis.keys import KeyLayout
from tests.support.ranking import BOARDS
from tests.support.shared_services import REDIS_URL

pytestmark = pytest.mark.integration


RETENTION = timedelta(days=1)


@pytest.fixture(params=["redis", "redis-cluster"])
def url(request: pytest.FixtureRequest) -> str:
    """A single Redis, or the private cluster (one of its nodes)."""
    if request.param == "redis-cluster":
        return str(request.getfixturevalue("redis_cluster").url())
    return REDIS_URL


@pytest.fixture
async def registry(url: str, redis_prefix: str) -> AsyncIterator[RedisInstances]:
    """The registry on a Redis store under the test's prefix."""
    store = RedisRankingStore.from_url(
        url, key_prefix=redis_prefix, boards=BOARDS, retention=RETENTION, cluster=url != REDIS_URL
    )
    yield store.instances()
    await store.close()


def registry_keys(prefix: str) -> list[str]:
    """Every key of the registry (one instance's dirty set: "a")."""
    keys = KeyLayout(prefix, BOARDS, RETENTION).instances()
    return [keys.members, keys.fenced, keys.fence, keys.since, keys.dirty("a")]


async def test_heartbeats_register_and_deadlines_pass(registry: RedisInstances) -> None:
    first = await registry.heartbeat("a", 0.3, 0)
    assert not first.known
    assert first.live == ("a",)
    await registry.heartbeat("b", 5.0, 0)
    again = await registry.heartbeat("a", 0.3, 0)
    assert again.known
    assert set(again.live) == {"a", "b"}
    await asyncio.sleep(0.5)
    seen_by_b = await registry.heartbeat("b", 5.0, 0)
    assert seen_by_b.live == ("b",)
    assert seen_by_b.dead == ("a",)


async def test_a_fence_waits_for_every_live_instance_to_pass_it(registry: RedisInstances) -> None:
    await registry.heartbeat("a", 5.0, 0)
    await registry.heartbeat("b", 5.0, 0)
    asked = await registry.fence()
    assert set(asked.waiting) == {"a", "b"}
    assert (await registry.heartbeat("a", 5.0, 0)).fence == asked.fence
    await registry.heartbeat("a", 5.0, asked.fence)
    assert (await registry.fence(asked.fence)).waiting == ("b",)
    await registry.heartbeat("b", 5.0, asked.fence - 1)  # an older fence is not this one
    assert (await registry.fence(asked.fence)).waiting == ("b",)
    await registry.heartbeat("b", 5.0, asked.fence)
    assert (await registry.fence(asked.fence)).waiting == ()
    # A later fence is above every earlier one, whoever asks.
    assert (await registry.fence()).fence > asked.fence


async def test_a_registry_lost_with_redis_data_is_young_and_asks_again(
    registry: RedisInstances, url: str, redis_prefix: str
) -> None:
    await registry.heartbeat("a", 5.0, 0)
    asked = await registry.fence()
    await registry.heartbeat("a", 5.0, asked.fence)
    await asyncio.sleep(0.2)
    assert (await registry.fence(asked.fence)).age_ms >= 200
    client = (
        redis_asyncio.Redis.from_url(url)
        if url == REDIS_URL
        else redis_asyncio.RedisCluster.from_url(url)
    )
    for key in registry_keys(redis_prefix):
        await client.delete(key)
    await client.aclose()
    # Checking the fence after the loss asks for it again, in a registry that starts now.
    state = await registry.fence(asked.fence)
    assert state.age_ms < 200
    assert state.live == ()
    beat = await registry.heartbeat("a", 5.0, asked.fence - 1)
    assert not beat.known
    assert beat.fence == asked.fence
    assert (await registry.fence(asked.fence)).waiting == ("a",)


async def test_a_dead_instance_is_claimed_once_with_its_dirty_periods(
    registry: RedisInstances,
) -> None:
    await registry.heartbeat("dead", 0.2, 0)
    await registry.dirty("dead", [("global", "2026-11"), ("alltime", "all")], 1, declare=True)
    assert await registry.reap("dead") is None  # alive: not yet
    await asyncio.sleep(0.3)
    claims = await asyncio.gather(*(registry.reap("dead") for _ in range(5)))
    won = [claim for claim in claims if claim is not None]
    assert len(won) == 1
    assert sorted(won[0]) == [("alltime", "all"), ("global", "2026-11")]
    beat = await registry.heartbeat("other", 5.0, 0)
    assert "dead" not in beat.live + beat.dead


async def test_a_retirement_never_drops_a_newer_declaration(registry: RedisInstances) -> None:
    """The retirement (after a barrier) and a new write's declaration go on different
    connections: whichever reaches Redis first, the newer declaration stays."""
    await registry.heartbeat("a", 0.2, 0)
    await registry.dirty("a", [("global", "2026-11")], 1, declare=True)
    await registry.dirty("a", [("global", "2026-11")], 2, declare=True)  # arrived first
    await registry.dirty("a", [("global", "2026-11")], 1, declare=False)  # the older retirement
    await registry.dirty("a", [("alltime", "all")], 3, declare=True)
    await registry.dirty("a", [("alltime", "all")], 3, declare=False)  # retired: flushed
    await asyncio.sleep(0.3)
    assert await registry.reap("a") == [("global", "2026-11")]


async def test_a_clean_goodbye_leaves_nothing_to_reconcile(registry: RedisInstances) -> None:
    await registry.heartbeat("a", 0.2, 0)
    await registry.dirty("a", [("global", "2026-11")], 1, declare=True)
    await registry.leave("a")
    await asyncio.sleep(0.3)
    assert await registry.reap("a") is None
    assert (await registry.heartbeat("b", 5.0, 0)).dead == ()


def test_the_registry_keys_share_one_cluster_slot() -> None:
    assert len({key_slot(name.encode()) for name in registry_keys("lb")}) == 1
