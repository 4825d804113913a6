"""resolvers/seasons.py with the real stores: a period's end frozen exactly once across
instances (events still buffered at the boundary counted, the next period's left out),
periodEnded on every instance, past reads from the frozen standings, catch-up at start."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from resolvers.service import IncrementRequest
from server.resources import Resources
from store.models import PeriodResult, RankedPlayer
from tests.support.history_database import query_history
from tests.support.seasons import (
    SharedClock,
    backend_fixture,
    delete_cluster_keys,
    delete_period_events,
    instance,
    season_settings,
    until,
    utc,
)
from tests.support.shared_services import delete_prefix

pytestmark = pytest.mark.integration

BOARDS = "global:monthly,daily:daily"
DAY = "2026-12-05"


backend = backend_fixture("global:monthly,daily:daily:shards=4")
"""Redis + MariaDB, a Redis Cluster + MariaDB with the daily board sharded, or the embedded
default (SQLite)."""


def increments(*items: tuple[str, int]) -> list[IncrementRequest]:
    return [
        IncrementRequest(username=name, delta=delta, board="daily", event_id=None)
        for name, delta in items
    ]


async def collect(resources: Resources, board: str, into: list[PeriodResult]) -> None:
    assert resources.seasons is not None
    async for result in resources.seasons.ended(board):
        into.append(result)


@contextlib.asynccontextmanager
async def subscribed(resources: Resources, into: list[PeriodResult]) -> AsyncIterator[None]:
    assert resources.seasons is not None
    await resources.seasons.listening()
    task = asyncio.create_task(collect(resources, "daily", into))
    await asyncio.sleep(0.01)  # let the subscriber register
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def final_result(resources: Resources, period: str = DAY) -> PeriodResult | None:
    assert resources.seasons is not None
    return await resources.seasons._standings.result("daily", period)


async def test_a_period_ends_once_exactly_across_instances(
    backend: dict[str, Any],
) -> None:
    clock = SharedClock(utc("2026-12-05T23:59:00"))
    # Events wait in each batcher for up to 1.5 s: some are still buffered at the boundary.
    settings = season_settings(**({"LEADERBOARD_BOARDS": BOARDS} | backend), flush_interval_ms=1500)
    count = 3 if "redis_url" in backend else 1
    heard: list[list[PeriodResult]] = [[] for _ in range(count)]
    async with contextlib.AsyncExitStack() as stack:
        instances = [
            await stack.enter_async_context(instance(settings, clock)) for _ in range(count)
        ]
        for resources, into in zip(instances, heard, strict=True):
            await stack.enter_async_context(subscribed(resources, into))
        expected: dict[str, int] = {}
        for index in range(30):
            name, delta = f"p{index % 12}", index + 1
            expected[name] = expected.get(name, 0) + delta
            await instances[index % count].service.increment(increments((name, delta)))
        clock.set(utc("2026-12-06T00:00:01"))
        # The next period's events never count in the one that ended.
        await instances[0].service.increment(increments(("p0", 1000), ("late", 5)))

        async def produced() -> bool:
            return all(heard)

        await until(produced, what="periodEnded on every instance")
        await asyncio.sleep(0.3)  # a second result or notice would show up meanwhile
        result = await final_result(instances[0])
        assert result is not None
        truth = sorted(expected.items(), key=lambda item: (-item[1], item[0]))
        assert result.player_count == len(expected)
        assert [(p.username, p.score) for p in result.top] == truth
        assert [len(into) for into in heard] == [1] * count
        assert all(into[0] == result for into in heard)
        assert sum(r.seasons.results_made for r in instances if r.seasons) == 1
        url = settings.history_url
        rows = await query_history(
            url,
            f"SELECT username, SUM(delta) FROM score_events WHERE board = 'daily' "
            f"AND period = '{DAY}' GROUP BY username",
        )
        assert {str(name): int(str(total)) for name, total in rows} == expected
        stored = await query_history(
            url, f"SELECT COUNT(*) FROM period_results WHERE board = 'daily' AND period = '{DAY}'"
        )
        assert stored == [(1,)]


async def test_past_reads_come_from_the_frozen_standings(backend: dict[str, Any]) -> None:
    clock = SharedClock(utc("2026-12-05T12:00:00"))
    settings = season_settings(**({"LEADERBOARD_BOARDS": BOARDS} | backend))
    async with instance(settings, clock) as resources:
        service = resources.service
        await service.increment(
            increments(("ana", 30), ("bob", 20), ("cy", 20), ("dee", 10), ("eve", 5))
        )
        live_top = await service.top("daily", DAY, 10)
        clock.set(utc("2026-12-06T00:00:00"))

        async def final() -> bool:
            return await final_result(resources) is not None

        await until(final, what="the period's result")
        # Take the period's raw events and live keys away: the reads still answer.
        await delete_period_events(settings.history_url, DAY)
        if backend.get("redis_cluster"):
            assert await delete_cluster_keys(backend["redis_url"], backend["key_prefix"]) > 0
        elif "key_prefix" in backend:
            await delete_prefix(backend["key_prefix"])
    # A new instance: nothing of the period in its memory (embedded) or in Redis, nor in
    # the history's events; only the frozen standings can answer.
    async with instance(settings, clock) as resources:
        service = resources.service
        assert await service.top("daily", DAY, 10) == live_top
        assert await service.top("daily", DAY, 2, offset=1) == live_top[1:3]
        assert await service.player("daily", DAY, "cy") == RankedPlayer(
            username="cy", score=20, rank=2
        )
        assert await service.player("daily", DAY, "nobody") is None
        around = await service.neighborhood("daily", DAY, "cy", 1)
        assert [p.username for p in around] == ["bob", "cy", "dee"]
        assert await service.neighborhood("daily", DAY, "ana", 1) == live_top[:2]
        assert await service.player_count("daily", DAY) == 5


async def test_a_period_that_ended_while_all_were_down_is_final_at_the_next_start(
    backend: dict[str, Any],
) -> None:
    clock = SharedClock(utc("2026-12-04T20:00:00"))
    settings = season_settings(**({"LEADERBOARD_BOARDS": BOARDS} | backend))
    async with instance(settings, clock) as resources:
        await resources.service.increment(increments(("ana", 3), ("bob", 4)))
    # Down across two boundaries: both ended periods are finalized at the next start.
    clock.set(utc("2026-12-05T20:00:00"))
    async with instance(settings, clock) as resources:
        await resources.service.increment(increments(("cy", 1)))
    clock.set(utc("2026-12-07T08:00:00"))
    async with instance(settings, clock) as resources:

        async def both() -> bool:
            return (
                await final_result(resources, "2026-12-04") is not None
                and await final_result(resources, DAY) is not None
            )

        await until(both, what="both results")
        first = await final_result(resources, "2026-12-04")
        assert first is not None
        assert [(p.username, p.score, p.rank) for p in first.top] == [("bob", 4, 1), ("ana", 3, 2)]
    async with instance(settings, clock) as resources:
        await asyncio.sleep(0.3)  # a later start finds them final and makes nothing
        assert resources.seasons is not None
        assert resources.seasons.results_made == 0
    stored = await query_history(
        settings.history_url, "SELECT COUNT(*) FROM period_results WHERE player_count > 0"
    )
    assert stored == [(2,)]


async def test_an_erased_player_leaves_the_final_standings_and_results(
    backend: dict[str, Any],
) -> None:
    clock = SharedClock(utc("2026-12-05T12:00:00"))
    settings = season_settings(**({"LEADERBOARD_BOARDS": BOARDS} | backend))
    async with instance(settings, clock) as resources:
        service = resources.service
        await service.increment(
            increments(("ana", 30), ("bob", 20), ("cy", 20), ("dee", 10), ("eve", 5))
        )
        clock.set(utc("2026-12-06T00:00:00"))

        async def final() -> bool:
            return await final_result(resources) is not None

        await until(final, what="the period's result")
        assert resources.moderation is not None
        await resources.moderation.erase("bob")
        # Everyone after bob moves up a place (pages stay whole), those ranked behind him
        # one rank (cy, tied with him, keeps hers): as if he had never played; bob is in
        # no read and in no stored result.
        top = await service.top("daily", DAY, 10)
        assert [(p.username, p.score, p.rank) for p in top] == [
            ("ana", 30, 1),
            ("cy", 20, 2),
            ("dee", 10, 3),
            ("eve", 5, 4),
        ]
        assert await service.top("daily", DAY, 2, offset=1) == top[1:3]
        assert await service.player("daily", DAY, "bob") is None
        around = await service.neighborhood("daily", DAY, "dee", 1)
        assert [p.username for p in around] == ["cy", "dee", "eve"]
        result = await final_result(resources)
        assert result is not None
        assert [p.username for p in result.top] == ["ana", "cy", "dee", "eve"]
        rows = await query_history(settings.history_url, "SELECT username FROM period_standings")
        assert "bob" not in {str(name) for (name,) in rows}


async def test_an_erasure_reaches_the_player_counts_another_instance_cached(
    backend: dict[str, Any],
) -> None:
    """The reader instance caches a final period's player count; an erasure made on another
    instance lowers it there too (through the ban notice every erasure ends with)."""
    clock = SharedClock(utc("2026-12-05T12:00:00"))
    settings = season_settings(**({"LEADERBOARD_BOARDS": BOARDS} | backend))
    async with contextlib.AsyncExitStack() as stack:
        eraser = await stack.enter_async_context(instance(settings, clock))
        # Embedded: one process, so the reader is the eraser itself.
        reader = eraser
        if "redis_url" in backend:
            reader = await stack.enter_async_context(instance(settings, clock))
        await eraser.service.increment(increments(("ana", 30), ("bob", 20), ("cy", 10)))
        clock.set(utc("2026-12-06T00:00:00"))

        async def final() -> bool:
            return await final_result(eraser) is not None

        await until(final, what="the period's result")
        assert await reader.service.player_count("daily", DAY) == 3  # now cached
        assert eraser.moderation is not None
        await eraser.moderation.erase("bob")

        async def lowered() -> bool:
            return await reader.service.player_count("daily", DAY) == 2

        await until(lowered, timeout=10, what="the reader's count to drop")
