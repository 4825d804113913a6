"""Player profiles on every deployment (#14): the table (MariaDB, SQLite) as the source of
truth, read through the cache (Redis, a Redis Cluster, in process): leave and clear, two
instances sharing one Redis, a cache lost and refilled, racing versions."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import redis.asyncio as redis_asyncio
from redis.asyncio.cluster import RedisCluster

from store.embedded_profiles import InProcessProfileCache
from store.models import LEAVE, NO_PROFILE, PlayerProfile, StoredProfile
from store.ports import ProfileCache
from store.profiles import PlayerProfiles
from store.redis import RedisRankingStore
from store.redis.keys import PROFILE_BUCKETS
from store.sql import SqlScoreHistory
from tests.support.ranking import BOARDS
from tests.support.shared_services import REDIS_URL

pytestmark = pytest.mark.integration


@dataclass
class Deployment:
    """A history database and a way to open profile caches on one shared backend."""

    history: SqlScoreHistory
    stores: list[RedisRankingStore]
    redis: bool
    url: str = ""
    cluster: bool = False
    opened: int = 0

    def _client(self) -> Any:
        """A plain client of the deployment's Redis (a cluster client on a cluster)."""
        return RedisCluster.from_url(self.url) if self.cluster else redis_asyncio.from_url(self.url)

    async def cached_names(self, prefix: str) -> set[str]:
        """Every username the profile cache holds an entry of."""
        client = self._client()
        try:
            names: set[str] = set()
            for bucket in range(PROFILE_BUCKETS):
                fields = await client.hkeys(f"{prefix}:{{profiles|{bucket}}}")
                names |= {field.decode() for field in fields}
            return names
        finally:
            await client.aclose()

    async def lose_the_cache(self, prefix: str) -> None:
        """Every profile cache key deleted (Redis restarted empty)."""
        client = self._client()
        try:
            for bucket in range(PROFILE_BUCKETS):
                await client.delete(f"{prefix}:{{profiles|{bucket}}}")
        finally:
            await client.aclose()

    def cache(self) -> ProfileCache:
        """A cache as a new instance would open it (the same Redis, or its own memory)."""
        if not self.redis:
            return InProcessProfileCache()
        # Each new instance on the next Redis client: two instances, two connections.
        self.opened += 1
        return self.stores[self.opened % len(self.stores)].profile_cache()

    def instance(self) -> PlayerProfiles:
        return PlayerProfiles(self.history.profile_table(), self.cache())


@pytest.fixture(params=["embedded-sqlite", "redis-mysql", "cluster-mysql"])
async def deployment(
    request: pytest.FixtureRequest,
    redis_prefix: str,
    mysql_database_url: str,
    sqlite_database_url: str,
) -> AsyncIterator[Deployment]:
    embedded = request.param == "embedded-sqlite"
    history = SqlScoreHistory(sqlite_database_url if embedded else mysql_database_url)
    await history.connect()
    await history.migrate()
    stores: list[RedisRankingStore] = []
    url, cluster = "", False
    if not embedded:
        cluster = request.param.startswith("cluster")
        url = request.getfixturevalue("redis_cluster").url() if cluster else REDIS_URL
        # Two clients of one Redis: two instances of the service.
        stores = [
            RedisRankingStore.from_url(
                url,
                key_prefix=redis_prefix,
                boards=BOARDS,
                retention=timedelta(days=35),
                cluster=cluster,
            )
            for _ in range(2)
        ]
    yield Deployment(history, stores, redis=not embedded, url=url, cluster=cluster)
    for store in stores:
        await store.close()
    await history.close()


async def test_set_leave_and_clear(deployment: Deployment) -> None:
    profiles = deployment.instance()
    assert await profiles.profiles(["ana", "bo"]) == {"ana": NO_PROFILE, "bo": NO_PROFILE}
    await profiles.change("ana", "Ana", '{"c":"FR"}')
    await profiles.change("ana", LEAVE, '{"c":"DE"}')
    assert (await profiles.profiles(["ana"]))["ana"] == PlayerProfile(
        display_name="Ana", metadata='{"c":"DE"}'
    )
    await profiles.change("ana", None, LEAVE)
    assert (await profiles.profiles(["ana"]))["ana"] == PlayerProfile(
        display_name=None, metadata='{"c":"DE"}'
    )
    await profiles.change("Émile", "Émile ✨", None)
    assert (await profiles.profiles(["Émile", "emile"])) == {
        "Émile": PlayerProfile(display_name="Émile ✨", metadata=None),
        "emile": NO_PROFILE,  # exact names: no collation folds one into the other
    }


async def test_a_profile_set_on_one_instance_is_read_on_another(deployment: Deployment) -> None:
    first, second = deployment.instance(), deployment.instance()
    assert (await second.profiles(["ana"]))["ana"] == NO_PROFILE  # cached as "none" there
    await first.change("ana", "Ana", None)
    if deployment.redis:  # one shared cache: seen at once
        assert (await second.profiles(["ana"]))["ana"].display_name == "Ana"
    # A fresh instance (a restart) reads it from the table.
    assert (await deployment.instance().profiles(["ana"]))["ana"].display_name == "Ana"


async def test_a_lost_cache_refills_from_the_table(
    deployment: Deployment, redis_prefix: str
) -> None:
    profiles = deployment.instance()
    names = [f"p{index}" for index in range(100)]
    for name in names[:50]:
        await profiles.change(name, name.upper(), None)
    before = await profiles.profiles(names)
    if deployment.redis:
        await deployment.lose_the_cache(redis_prefix)
    else:
        profiles = deployment.instance()  # a new process: an empty cache
    assert await profiles.profiles(names) == before
    assert before["p7"].display_name == "P7"
    assert before["p70"] == NO_PROFILE


async def test_the_cache_keeps_the_newest_version(deployment: Deployment) -> None:
    cache = deployment.cache()
    newer = StoredProfile(version=5, profile=PlayerProfile(display_name="new", metadata=None))
    older = StoredProfile(version=4, profile=PlayerProfile(display_name="old", metadata=None))
    await cache.put({"ana": newer, "bo": older})
    await cache.put({"ana": older, "bo": newer})
    assert await cache.get(["ana", "bo", "cy"]) == {"ana": newer, "bo": newer}


async def test_versions_only_grow(deployment: Deployment) -> None:
    table = deployment.history.profile_table()
    first = await table.change("ana", "A", None)
    second = await table.change("ana", "B", None)
    assert second.version > first.version > 0
    assert second.profile.display_name == "B"


async def test_erase_leaves_no_row_and_no_cache_entry(
    deployment: Deployment, redis_prefix: str
) -> None:
    profiles = deployment.instance()
    await profiles.change("ana", "Ana", '{"c":"FR"}')
    await profiles.change("bo", "Bo", None)
    assert (await profiles.profiles(["ana", "bo"]))["ana"].display_name == "Ana"
    await deployment.history.player_records().erase("ana")  # what erasePlayer runs
    await profiles.forget("ana")
    assert set(await deployment.history.profile_table().get(["ana", "bo"])) == {"bo"}
    if deployment.redis:
        assert "ana" not in await deployment.cached_names(redis_prefix)
        assert "bo" in await deployment.cached_names(redis_prefix)
    assert (await deployment.instance().profiles(["ana"]))["ana"] == NO_PROFILE
    await deployment.history.player_records().erase("ana")  # a second erasure finds nothing
    await profiles.forget("ana")
    assert set(await deployment.history.profile_table().get(["ana", "bo"])) == {"bo"}
    # Made again later, the new profile outranks anything a cache held of the old one.
    await profiles.change("ana", "Ana again", None)
    assert (await deployment.instance().profiles(["ana"]))["ana"].display_name == "Ana again"


class PausingTable:
    """The profile table, with `get` held after it read the rows until `resume` is set:
    a refill that found a row and has not cached it yet."""

    def __init__(self, history: SqlScoreHistory) -> None:
        self._table = history.profile_table()
        self.read = asyncio.Event()
        self.resume = asyncio.Event()

    async def change(self, username: str, display_name: Any, metadata: Any) -> StoredProfile:
        return await self._table.change(username, display_name, metadata)

    async def get(self, usernames: Sequence[str]) -> dict[str, StoredProfile]:
        found = await self._table.get(usernames)
        self.read.set()
        await self.resume.wait()
        return found


async def test_a_refill_racing_an_erasure_does_not_bring_the_profile_back(
    deployment: Deployment, redis_prefix: str
) -> None:
    cache = deployment.cache()
    table = PausingTable(deployment.history)
    reader = PlayerProfiles(table, cache)
    await PlayerProfiles(deployment.history.profile_table(), cache).change("ana", "Ana", None)
    await cache.forget(["ana"])  # not cached: the next read refills from the table
    refill = asyncio.create_task(reader.profiles(["ana"]))
    await table.read.wait()  # the refill found Ana's row...
    # ...then erasePlayer deletes the row and forgets the cache entry...
    await deployment.history.player_records().erase("ana")
    await PlayerProfiles(deployment.history.profile_table(), cache).forget("ana")
    table.resume.set()  # ...and only then does the refill write to the cache.
    await refill
    assert "ana" not in await cache.get(["ana"])
    if deployment.redis:
        assert "ana" not in await deployment.cached_names(redis_prefix)
    assert (await deployment.instance().profiles(["ana"]))["ana"] == NO_PROFILE
    # A later read, after the erasure, fills the cache again (with "no profile").
    fresh = PlayerProfiles(deployment.history.profile_table(), cache)
    assert (await fresh.profiles(["ana"]))["ana"] == NO_PROFILE
    assert (await cache.get(["ana"]))["ana"].profile == NO_PROFILE
