"""Metrics fed by the real components: history timings, rebuilds, WebSocket connections."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from server.app import create_app
from server.metrics import Metrics
from server.settings import Settings
from store.boards import parse_boards
from store.embedded_ranking import EmbeddedRankingStore
from store.errors import StoreUnavailable
from store.models import ScoreEvent
from store.recovery import RankingRecovery
from store.sql import SqlScoreHistory
from tests.support.asgi_app import refusal_code, subscription_to
from tests.support.graphql_client import TRANSPORT_WS

pytestmark = pytest.mark.integration

BOARDS = parse_boards("global:monthly")
PERIOD = BOARDS[0].current_period()


def sample(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def events(count: int) -> list[ScoreEvent]:
    return [
        ScoreEvent(
            board="global",
            period=PERIOD,
            username=f"p{index}",
            delta=index + 1,
            event_id=f"e{index}",
            client_event_id=True,
            created_at_ms=1_790_000_000_000,
        )
        for index in range(count)
    ]


async def test_history_operations_are_timed(history_url: str) -> None:
    metrics = Metrics()
    history = SqlScoreHistory(history_url, observer=metrics)
    await history.connect()
    try:
        # Before the migration there is no table: a failed call, timed and counted.
        with pytest.raises(StoreUnavailable):
            await history.totals("global", PERIOD)
        await history.migrate()
        await history.append(events(5))
        assert len(await history.totals("global", PERIOD)) == 5
    finally:
        await history.close()
    for operation, calls in (("migrate", 1), ("append", 1), ("totals", 2)):
        assert (
            sample(metrics, "leaderboard_store_seconds_count", store="history", operation=operation)
            == calls
        ), operation
    failures = sample(
        metrics, "leaderboard_store_errors_total", store="history", operation="totals"
    )
    assert failures == 1
    assert (
        sample(metrics, "leaderboard_store_errors_total", store="history", operation="append")
        is None
    )


@pytest.fixture
async def history(sqlite_database_url: str) -> AsyncIterator[SqlScoreHistory]:
    """A migrated SQLite history holding 5 events of the current period."""
    store = SqlScoreHistory(sqlite_database_url)
    await store.connect()
    await store.migrate()
    await store.append(events(5))
    yield store
    await store.close()


def recovery_over(history: SqlScoreHistory, metrics: Metrics) -> RankingRecovery:
    return RankingRecovery(
        EmbeddedRankingStore(boards=BOARDS),
        history,
        claim_seconds=5,
        wait_seconds=5,
        observer=metrics,
    )


async def test_rebuilds_are_counted_and_report_their_progress(history: SqlScoreHistory) -> None:
    metrics = Metrics()
    recovery = recovery_over(history, metrics)
    steps: list[tuple[str, int, int]] = []
    assert await recovery.rebuild("global", PERIOD, lambda *step: steps.append(step)) == 5
    assert [(done, total) for _, done, total in steps] == [(index, 4) for index in range(5)]
    assert steps[-1][0] == "5 players loaded"
    assert sample(metrics, "leaderboard_rebuilds_total", result="ok") == 1
    assert sample(metrics, "leaderboard_rebuild_players_sum") == 5

    await history.close()
    with pytest.raises(StoreUnavailable):
        await recovery.rebuild("global", PERIOD)
    assert sample(metrics, "leaderboard_rebuilds_total", result="failed") == 1
    assert sample(metrics, "leaderboard_rebuild_seconds_count") == 2


async def test_reconcile_reports_the_rebuild_steps_after_its_reads(
    history: SqlScoreHistory,
) -> None:
    recovery = recovery_over(history, Metrics())
    steps: list[tuple[str, int, int]] = []
    # Nothing live yet: every player drifts, the ranking is rebuilt.
    drifts = await recovery.reconcile("global", PERIOD, lambda *step: steps.append(step))
    assert len(drifts) == 5
    assert [(done, total) for _, done, total in steps] == [(0, 2), (1, 2)] + [
        (2 + index, 6) for index in range(5)
    ]
    steps.clear()
    assert await recovery.reconcile("global", PERIOD, lambda *step: steps.append(step)) == []
    assert steps[-1] == ("in sync", 2, 2)


@pytest.fixture
async def app(sqlite_database_url: str) -> AsyncIterator[Starlette]:
    """The app on the embedded store, admitting one WebSocket connection."""
    settings = Settings(
        _env_file=None,
        database_url=sqlite_database_url,
        write_token="metrics-token",
        max_websocket_connections=1,
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


async def scrape(app: Starlette, name: str) -> float:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app), base_url="http://testserver"
    ) as client:
        response = await client.get("/metrics")
    for line in response.text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} is not exported:\n{response.text}")


async def test_websocket_connections_and_refusals_are_exported(app: Starlette) -> None:
    assert await scrape(app, "leaderboard_websocket_connections") == 0
    async with subscription_to(app, TRANSPORT_WS):
        assert await scrape(app, "leaderboard_websocket_connections") == 1
        assert await refusal_code(app) == 1013
        assert await scrape(app, "leaderboard_websocket_refused_total") == 1
    assert await scrape(app, "leaderboard_websocket_connections") == 0
