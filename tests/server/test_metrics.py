"""`Metrics` as the components' observer: flush retries, store timings, rebuilds."""

from __future__ import annotations

import pytest

from server.metrics import Metrics

pytestmark = pytest.mark.unit


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    assert value is not None, f"{name}{labels} is not exported"
    return value


def test_outcomes_are_exported_at_zero_before_they_happen() -> None:
    metrics = Metrics()
    for result in ("ok", "failed"):
        assert sample(metrics, "leaderboard_batcher_flushes_total", result=result) == 0
        assert sample(metrics, "leaderboard_rebuilds_total", result=result) == 0
    assert sample(metrics, "leaderboard_batcher_flush_retries_total") == 0
    assert sample(metrics, "process_resident_memory_bytes") > 0


def test_every_flush_after_a_failed_one_is_a_retry() -> None:
    metrics = Metrics()
    metrics.flushed(10, 0.001)
    assert sample(metrics, "leaderboard_batcher_refusing_writes") == 0
    metrics.flush_failed(500, 0.2)
    assert sample(metrics, "leaderboard_batcher_refusing_writes") == 1
    assert sample(metrics, "leaderboard_batcher_flush_retries_total") == 0
    metrics.flush_failed(500, 0.4)
    metrics.flushed(500, 0.01)
    assert sample(metrics, "leaderboard_batcher_refusing_writes") == 0
    metrics.flushed(3, 0.001)
    assert sample(metrics, "leaderboard_batcher_flush_retries_total") == 2
    assert sample(metrics, "leaderboard_batcher_flushes_total", result="failed") == 2
    assert sample(metrics, "leaderboard_batcher_flushes_total", result="ok") == 3
    assert sample(metrics, "leaderboard_batcher_flush_events_sum") == 513
    assert sample(
        metrics, "leaderboard_batcher_flush_seconds_sum", result="failed"
    ) == pytest.approx(0.6)


def test_store_calls_are_timed_and_failures_counted() -> None:
    metrics = Metrics()
    metrics.observe_store("redis", "increment", 0.001)
    metrics.observe_store("redis", "increment", 0.002, failed=True)
    metrics.observe_store("history", "append", 0.25)
    labels = {"store": "redis", "operation": "increment"}
    assert sample(metrics, "leaderboard_store_seconds_count", **labels) == 2
    assert sample(metrics, "leaderboard_store_errors_total", **labels) == 1
    history = {"store": "history", "operation": "append"}
    assert sample(metrics, "leaderboard_store_seconds_sum", **history) == 0.25
    assert metrics.registry.get_sample_value("leaderboard_store_errors_total", history) is None


def test_rebuilds_are_counted_by_result_and_timed() -> None:
    metrics = Metrics()
    metrics.rebuilt(1200, 0.5)
    metrics.rebuild_failed(2.0)
    assert sample(metrics, "leaderboard_rebuilds_total", result="ok") == 1
    assert sample(metrics, "leaderboard_rebuilds_total", result="failed") == 1
    assert sample(metrics, "leaderboard_rebuild_seconds_count") == 2
    assert sample(metrics, "leaderboard_rebuild_players_sum") == 1200


def test_gauges_are_read_at_scrape_time() -> None:
    metrics = Metrics()
    state = {"depth": 3, "subscriptions": 2, "websockets": 1}
    metrics.track(
        batcher_depth=lambda: state["depth"], subscriptions=lambda: state["subscriptions"]
    )
    metrics.track_websockets(lambda: state["websockets"])
    metrics.websocket_was_refused()
    state |= {"depth": 7, "websockets": 4}
    assert sample(metrics, "leaderboard_batcher_depth") == 7
    assert sample(metrics, "leaderboard_subscriptions") == 2
    assert sample(metrics, "leaderboard_websocket_connections") == 4
    assert sample(metrics, "leaderboard_websocket_refused_total") == 1
