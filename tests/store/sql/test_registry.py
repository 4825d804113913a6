"""The player registry (store/sql/registry.py, migration 11): erasures racing flushes on
two instances, and the migration that backfills the registry and drops the username index;
on the real shared MariaDB and on SQLite (the cache's own rules: test_registry_cache.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from store.models import ScoreEvent
from store.sql import SqlScoreHistory, schema_steps
from tests.support.history_database import (
    history_epoch,
    query_history,
    registered_players,
    unregistered_rows,
)

pytestmark = pytest.mark.integration

BOARD = "global"
PERIOD = "2026-11"

_ids = iter(range(1_000_000))


def event(username: str, delta: int = 1, *, period: str = PERIOD) -> ScoreEvent:
    """A score event with a generated id."""
    return ScoreEvent(
        board=BOARD,
        period=period,
        username=username,
        delta=delta,
        event_id=f"~{next(_ids)}",
        client_event_id=False,
        created_at_ms=1_790_000_000_000,
        presence=0,
    )


@pytest.fixture
async def instances(history_url: str) -> Any:
    """Two connected histories on one migrated database: a writer and an eraser."""
    writer, eraser = SqlScoreHistory(history_url), SqlScoreHistory(history_url)
    await writer.connect()
    await eraser.connect()
    await writer.migrate()
    yield writer, eraser
    await writer.close()
    await eraser.close()


def pause_inserts(
    history: SqlScoreHistory, monkeypatch: pytest.MonkeyPatch
) -> tuple[asyncio.Event, asyncio.Event]:
    """Make the history's next flushes stop inside their transaction, after the epoch read
    and before their rows: (entered, release)."""
    entered, release = asyncio.Event(), asyncio.Event()
    dialect: Any = history._dialect
    original: Callable[..., Awaitable[None]] = dialect._insert

    async def paused(*args: Any) -> None:
        entered.set()
        await release.wait()
        await original(*args)

    monkeypatch.setattr(dialect, "_insert", paused)
    return entered, release


async def test_an_erasure_committed_before_a_flush_empties_its_cache(
    instances: tuple[SqlScoreHistory, SqlScoreHistory], history_url: str
) -> None:
    writer, eraser = instances
    await writer.append([event("ann")])  # registered, in the writer's cache
    assert (await eraser.player_records().erase("ann")).events == 1
    await writer.append([event("ann")])  # a stale cache: must register ann again
    assert await unregistered_rows(history_url) == []
    assert (await eraser.player_records().erase("ann")).events == 1
    assert await query_history(history_url, "SELECT COUNT(*) FROM score_events") == [(0,)]


async def test_an_erasure_waits_for_a_flush_in_flight_that_trusts_its_cache(
    instances: tuple[SqlScoreHistory, SqlScoreHistory],
    history_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The flush read the epoch and found ann in its cache: it writes ann's row without
    # registering it. The erasure must not run between that read and the commit (MySQL:
    # the epoch's share lock; SQLite: the IMMEDIATE transactions), or the row it writes
    # after the registry row went would be found by nothing.
    writer, eraser = instances
    await writer.append([event("ann")])
    entered, release = pause_inserts(writer, monkeypatch)
    flush = asyncio.create_task(writer.append([event("ann"), event("bob")]))
    await asyncio.wait_for(entered.wait(), 10)
    erase = asyncio.create_task(eraser.player_records().erase("ann"))
    await asyncio.sleep(0.5)
    try:
        assert not erase.done(), "the erasure did not wait for the flush in flight"
    finally:
        release.set()
        await flush
        erased = await erase
    assert erased.events == 2
    assert await unregistered_rows(history_url) == []
    assert await query_history(history_url, "SELECT username FROM score_events") == [("bob",)]


async def test_flushes_racing_erasures_never_leave_an_unregistered_row(
    instances: tuple[SqlScoreHistory, SqlScoreHistory], history_url: str
) -> None:
    writer, eraser = instances
    await writer.append([event("ann"), event("bob")])
    for round_number in range(15):
        delay = round_number % 5 * 0.002
        await asyncio.gather(
            writer.append([event("ann"), event("bob"), event("ann", period="2026-10")]),
            asyncio.sleep(delay),
            eraser.player_records().erase("ann"),
        )
        assert await unregistered_rows(history_url) == [], round_number
    await eraser.player_records().erase("ann")
    assert await query_history(history_url, "SELECT DISTINCT username FROM score_events") == [
        ("bob",)
    ]


# Migration 11


async def index_names(url: str) -> set[str]:
    """The names of `score_events`' indexes (SHOW INDEX / sqlite_master)."""
    if url.startswith("sqlite"):
        rows = await query_history(
            url, "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'score_events'"
        )
        return {str(row[0]) for row in rows}
    return {str(row[2]) for row in await query_history(url, "SHOW INDEX FROM score_events")}


async def test_migration_11_backfills_the_registry_and_drops_the_username_index(
    history_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(schema_steps, "MIGRATIONS", schema_steps.MIGRATIONS[:10])
    old = SqlScoreHistory(history_url)
    await old.connect()
    await old.migrate()
    await old.close()
    assert "score_events_username" in await index_names(history_url)
    await query_history(
        history_url,
        "INSERT INTO score_events (board, period, username, delta, event_id, "
        "client_event_id, created_at_ms) VALUES "
        f"('{BOARD}', '{PERIOD}', 'ann', 5, 'a1', 0, 1), ('{BOARD}', '{PERIOD}', 'ann', 1, "
        f"'a2', 0, 1), ('{BOARD}', '2026-10', 'ann', 2, 'a3', 0, 1), "
        f"('daily', '2026-11-30', 'bob', 3, 'b1', 0, 1)",
    )
    monkeypatch.undo()
    history = SqlScoreHistory(history_url)
    await history.connect()
    try:
        await history.migrate()
        await history.migrate()  # a second run changes nothing
        assert "score_events_username" not in await index_names(history_url)
        assert await registered_players(history_url) == {
            ("ann", BOARD, PERIOD),
            ("ann", BOARD, "2026-10"),
            ("bob", "daily", "2026-11-30"),
        }
        assert await unregistered_rows(history_url) == []
        assert await history_epoch(history_url) == 0
        assert (await history.player_records().erase("ann")).events == 3
    finally:
        await history.close()
    # The step run again (docs/moderation.md: how to re-run the backfill once pre-11
    # instances are gone) keeps what is there and registers what they wrote.
    await query_history(history_url, "UPDATE schema_version SET version = 10 WHERE id = 1")
    await query_history(
        history_url,
        "INSERT INTO score_events (board, period, username, delta, event_id, "
        f"client_event_id, created_at_ms) VALUES ('{BOARD}', '{PERIOD}', 'cid', 1, 'c1', 0, 1)",
    )
    assert await unregistered_rows(history_url) == [("cid", BOARD, PERIOD)]
    again = SqlScoreHistory(history_url)
    await again.connect()
    try:
        await again.migrate()
    finally:
        await again.close()
    assert await unregistered_rows(history_url) == []
    assert await registered_players(history_url) == {
        ("bob", "daily", "2026-11-30"),
        ("cid", BOARD, PERIOD),
    }
    assert await history_epoch(history_url) == 2
