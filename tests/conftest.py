"""Fixtures shared by every test: the real Redis and MariaDB of this machine, isolated per test."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import is_hypothesis_test

from tests.support.private_servers import private_mariadb, private_redis
from tests.support.redis_cluster import redis_cluster
from tests.support.shared_services import delete_prefix, mysql_url, private_database, require_redis

__all__ = ["private_mariadb", "private_redis", "redis_cluster"]

# Fixtures that tests in several folders use: the ASGI app on each backend (schema/ and server/
# tests), a history database on each backend (store/sql/, batcher/, server/ tests) and real
# `leaderboard serve` processes (server/, resolvers/, store/sql/ tests).
pytest_plugins = [
    "tests.support.asgi_app",
    "tests.support.history_fixtures",
    "tests.support.service_fixtures",
]


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    """A key prefix no other test uses on the shared Redis; its keys are deleted afterwards."""
    await require_redis()
    prefix = f"lbtest-{secrets.token_hex(6)}"
    yield prefix
    await delete_prefix(prefix)


@pytest.fixture
async def mysql_database_url() -> AsyncIterator[str]:
    """A `databases` URL of a fresh database on the shared MariaDB, dropped afterwards."""
    async with private_database() as name:
        yield mysql_url(name)


@pytest.fixture
def sqlite_database_url(tmp_path: Path) -> str:
    """A `databases` URL of a fresh SQLite file."""
    return f"sqlite+aiosqlite:///{tmp_path / 'leaderboard.db'}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Hypothesis tests time out by killing the run (stacks dumped), not by failing the test.

    pytest-timeout's default method fails a test by raising inside it; Hypothesis takes that
    for a failing example and replays it to shrink it, with no timeout left, so a hang would
    run until CI's own limit. The thread method dumps every thread's stack and ends pytest.
    """
    for item in items:
        function = getattr(item, "function", None)
        if not (item.get_closest_marker("property") or is_hypothesis_test(function)):
            continue
        own = item.get_closest_marker("timeout")
        args = own.args if own else ()
        kwargs = {**(own.kwargs if own else {}), "method": "thread"}
        item.add_marker(pytest.mark.timeout(*args, **kwargs), append=False)
