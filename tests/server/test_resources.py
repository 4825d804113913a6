"""server/resources.py: which stores the settings open, the start-up retries up to their
deadline, readiness, and an orderly stop that leaves nothing open."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from server.resources import build_resources, ready, running
from server.settings import Settings
from store.cached_ranking import TopCache
from store.embedded_ranking import EmbeddedRankingStore
from store.errors import StoreUnavailable
from store.redis import RedisRankingStore
from tests.support.leaks import open_now, opened_since
from tests.support.shared_services import REDIS_URL

pytestmark = pytest.mark.integration


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, write_token="t", LEADERBOARD_BOARDS="global:monthly", **values)


def closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_the_settings_choose_the_stores(sqlite_database_url: str, redis_prefix: str) -> None:
    embedded = build_resources(settings(database_url=sqlite_database_url))
    assert isinstance(embedded.ranking, EmbeddedRankingStore)
    assert embedded.top_cache is None
    on_redis = dict(database_url=sqlite_database_url, redis_url=REDIS_URL, key_prefix=redis_prefix)
    cached = build_resources(settings(**on_redis))
    assert isinstance(cached.ranking, RedisRankingStore)
    assert isinstance(cached.top_cache, TopCache)
    uncached = build_resources(settings(**on_redis, top_cache_staleness_ms=0))
    assert isinstance(uncached.ranking, RedisRankingStore)
    assert uncached.top_cache is None


async def test_start_up_gives_up_at_its_deadline_and_closes_what_it_opened(
    sqlite_database_url: str,
) -> None:
    before = open_now()
    unreachable = f"redis://127.0.0.1:{closed_port()}/0"
    resources = build_resources(settings(database_url=sqlite_database_url, redis_url=unreachable))
    with pytest.raises(StoreUnavailable):
        async with running(resources, timeout=0):
            pytest.fail("started without Redis")
    assert not resources.started
    assert await opened_since(before) == ([], 0)


async def test_ready_once_started_and_not_after(redis_prefix: str, mysql_database_url: str) -> None:
    before = open_now()
    resources = build_resources(
        settings(redis_url=REDIS_URL, key_prefix=redis_prefix, database_url=mysql_database_url)
    )
    is_ready, checks = await ready(resources)
    assert not is_ready
    assert checks["startup"] == "pending"
    async with running(resources):
        is_ready, checks = await ready(resources)
        assert is_ready, checks
        assert checks == {"startup": "done", "ranking": "ok", "history": "ok", "batcher": "ok"}
    assert not resources.started
    assert await opened_since(before) == ([], 0)
