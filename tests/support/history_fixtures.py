"""Fixtures of an empty history database on each backend, and a connected history on it
(a root conftest plugin: store/sql/, batcher/ and server/ tests use them)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from store.sql import SqlScoreHistory


@pytest.fixture(params=["mysql", "sqlite"])
def history_url(request: pytest.FixtureRequest) -> str:
    """A URL of an empty history database, on each backend."""
    fixture = "mysql_database_url" if request.param == "mysql" else "sqlite_database_url"
    return str(request.getfixturevalue(fixture))


@pytest.fixture
async def history(history_url: str) -> AsyncIterator[SqlScoreHistory]:
    """A connected, migrated history on `history_url`."""
    store = SqlScoreHistory(history_url)
    await store.connect()
    await store.migrate()
    yield store
    await store.close()
