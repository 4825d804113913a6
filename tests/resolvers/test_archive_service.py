"""The event archive under a running service (Redis + MariaDB, and the embedded default):
after `leaderboard archive` moved a final period's raw events, and after the retention
deleted them, the period's reads answer as before; a rebuild of the archived period reads
its archived rows; an erasure deletes the player's archived rows."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from resolvers.service import IncrementRequest
from store.event_archive import archive_events
from store.models import RankedPlayer
from store.sql import SqlScoreHistory
from tests.support.history_database import query_history
from tests.support.seasons import (
    SharedClock,
    backend_fixture,
    instance,
    season_settings,
    until,
    utc,
)

pytestmark = pytest.mark.integration

BOARDS = "global:monthly,daily:daily"
DAY = "2026-12-05"


backend = backend_fixture()
"""Redis + MariaDB, a Redis Cluster + MariaDB, or the embedded default (SQLite)."""


async def archive(url: str, now: str, *, before: date | None, retention_days: int | None) -> int:
    """One run of the archive command's rules over the service's boards; rows touched."""
    history = SqlScoreHistory(url)
    await history.connect()
    try:
        boards = season_settings(LEADERBOARD_BOARDS=BOARDS).boards
        report = await archive_events(
            history.archive(),
            history.standings(),
            boards,
            now=datetime.fromisoformat(now).replace(tzinfo=UTC),
            before=before,
            retention_days=retention_days,
        )
    finally:
        await history.close()
    return sum(report.archived.values()) + sum(report.deleted.values())


async def event_rows(url: str, table: str) -> list[tuple[object, ...]]:
    """(period, username) of every row of an event table."""
    return sorted(await query_history(url, f"SELECT period, username FROM {table}"))


async def test_archived_and_deleted_periods_read_the_same(backend: dict[str, Any]) -> None:
    clock = SharedClock(utc("2026-12-05T12:00:00"))
    settings = season_settings(**({"LEADERBOARD_BOARDS": BOARDS} | backend))
    url = settings.history_url
    async with instance(settings, clock) as resources:
        service = resources.service
        await service.increment(
            [
                IncrementRequest(username=name, delta=delta, board="daily", event_id=event_id)
                for name, delta, event_id in (
                    ("ana", 30, "a-1"),
                    ("bob", 20, "b-1"),
                    ("cy", 20, None),
                    ("bob", 1, "b-2"),
                )
            ]
        )
        live_top = await service.top("daily", DAY, 10)
        clock.set(utc("2026-12-06T00:00:00"))

        async def final() -> bool:
            assert resources.seasons is not None
            return await resources.seasons._standings.result("daily", DAY) is not None

        await until(final, what="the period's result")
        await resources.batcher.persisted_so_far()
        assert (
            await archive(url, "2026-12-06T00:00:01", before=date(2026, 12, 6), retention_days=None)
            == 4
        )
        assert await event_rows(url, "score_events_archive") == [
            (DAY, "ana"),
            (DAY, "bob"),
            (DAY, "bob"),
            (DAY, "cy"),
        ]
        assert all(period != DAY for period, _ in await event_rows(url, "score_events"))
        # The reads of the final period, and a rebuild of it from the archived rows.
        assert await service.top("daily", DAY, 10) == live_top
        assert await service.player("daily", DAY, "bob") == RankedPlayer(
            username="bob", score=21, rank=2
        )
        assert await resources.recovery.rebuild("daily", DAY) == 3
        assert await resources.ranking.totals("daily", DAY) == {"ana": 30, "bob": 21, "cy": 20}

        # An erasure reaches the archived rows (and the frozen standings).
        assert resources.moderation is not None
        removal = await resources.moderation.erase("bob")
        assert removal.events_deleted == 2
        assert all(name != "bob" for _, name in await event_rows(url, "score_events_archive"))
        assert [p.username for p in await service.top("daily", DAY, 10)] == ["ana", "cy"]

    # Retention of 1 day, two days later: the day's rows go; its reads answer the same.
    clock.set(utc("2026-12-08T00:00:00"))
    assert await archive(url, "2026-12-08T00:00:00", before=None, retention_days=1) == 2
    assert await event_rows(url, "score_events_archive") == []
    async with instance(settings, clock) as resources:
        top = await resources.service.top("daily", DAY, 10)
        assert [(p.username, p.score, p.rank) for p in top] == [("ana", 30, 1), ("cy", 20, 2)]
        assert await resources.service.player_count("daily", DAY) == 2
