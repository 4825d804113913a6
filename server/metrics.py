"""Prometheus metrics: one registry per app, exposed at /metrics (docs/observability.md).

`Metrics` is also the observer the components report to without importing the server:
the batcher's `FlushObserver`, the history's and the Redis store's timing observer
(`observe_store`) and the recovery's `RebuildObserver`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Protocol

from graphql import FieldNode, OperationDefinitionNode
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.core import CounterMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from strawberry.extensions import SchemaExtension

from schema.build import ROOT_FIELDS
from server.operation_rules import selected_operation

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# A store call is usually well under a millisecond; the top buckets catch the timeouts.
_STORE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5)
_FLUSH_EVENTS_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
_REBUILD_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
_REBUILD_PLAYERS_BUCKETS = (0, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000)

OK = "ok"
FAILED = "failed"


class Metrics:
    """Every metric the service exports."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        ProcessCollector(registry=registry)

        # GraphQL
        self.operations = Counter(
            "leaderboard_graphql_operations",
            "GraphQL operations by type, root field and outcome code ('OK' when no error).",
            ["type", "field", "code"],
            registry=registry,
        )
        self.operation_seconds = Histogram(
            "leaderboard_graphql_operation_seconds",
            "Time to execute a GraphQL query or mutation.",
            ["type", "field"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        # The shortcut's labelled children, by (type, field, code): `labels` takes a lock and
        # builds its key on every call, a few µs per answered request. Bounded by the
        # shortcut's fields times the error codes.
        self._fast_children: dict[tuple[str, str, str], tuple[Counter, Histogram]] = {}

        # The write buffer
        self.flushes = Counter(
            "leaderboard_batcher_flushes",
            "Flushes of the write buffer to the history, by result.",
            ["result"],
            registry=registry,
        )
        self.flush_events = Histogram(
            "leaderboard_batcher_flush_events",
            "Events written by one successful flush (one multi-row INSERT).",
            buckets=_FLUSH_EVENTS_BUCKETS,
            registry=registry,
        )
        self.flush_seconds = Histogram(
            "leaderboard_batcher_flush_seconds",
            "Time of one flush of the write buffer, by result.",
            ["result"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.flush_retries = Counter(
            "leaderboard_batcher_flush_retries",
            "Flushes that retried a failed one (same events, after a backoff).",
            registry=registry,
        )
        self.refusing_writes = Gauge(
            "leaderboard_batcher_refusing_writes",
            "1 while the last flush failed: writes get UNAVAILABLE until a retry succeeds.",
            registry=registry,
        )
        self.batcher_depth = Gauge(
            "leaderboard_batcher_depth",
            "Events acknowledged but not yet written to the history.",
            registry=registry,
        )

        # The stores
        self.store_seconds = Histogram(
            "leaderboard_store_seconds",
            "Time of one call to a store (redis: the live rankings; history: MySQL/SQLite), "
            "failed calls included.",
            ["store", "operation"],
            buckets=_STORE_BUCKETS,
            registry=registry,
        )
        self.store_errors = Counter(
            "leaderboard_store_errors",
            "Store calls that failed (unreachable, timed out, refused).",
            ["store", "operation"],
            registry=registry,
        )

        # Live updates
        self.websocket_connections = Gauge(
            "leaderboard_websocket_connections",
            "WebSocket connections open on this instance.",
            registry=registry,
        )
        self.websocket_refused = Counter(
            "leaderboard_websocket_refused",
            "WebSocket connections refused (1013) at LEADERBOARD_MAX_WEBSOCKET_CONNECTIONS.",
            registry=registry,
        )
        self.subscriptions = Gauge(
            "leaderboard_subscriptions",
            "Live GraphQL subscriptions on this instance.",
            registry=registry,
        )

        # Recovery
        self.rebuilds = Counter(
            "leaderboard_rebuilds",
            "Rankings this instance rebuilt from the history (Redis had lost them), by result.",
            ["result"],
            registry=registry,
        )
        self.rebuild_seconds = Histogram(
            "leaderboard_rebuild_seconds",
            "Time of one rebuild: reading the history and loading the ranking.",
            buckets=_REBUILD_BUCKETS,
            registry=registry,
        )
        self.rebuild_players = Histogram(
            "leaderboard_rebuild_players",
            "Players loaded by one successful rebuild.",
            buckets=_REBUILD_PLAYERS_BUCKETS,
            registry=registry,
        )
        self.fence_seconds = Histogram(
            "leaderboard_fence_seconds",
            "Wait of one rebuild's fence: until every live instance flushed what it applied.",
            buckets=_REBUILD_BUCKETS,
            registry=registry,
        )
        self.dead_instances = Counter(
            "leaderboard_dead_instances_reconciled",
            "Instances that died without leaving, claimed and reconciled by this one.",
            registry=registry,
        )
        self.dead_instance_periods = Counter(
            "leaderboard_dead_instance_periods_reconciled",
            "Board periods this instance reconciled after dead instances.",
            registry=registry,
        )

        # Export the outcomes at 0 before they first happen, so rate() and alerts see them.
        for result in (OK, FAILED):
            self.flushes.labels(result)
            self.rebuilds.labels(result)
        self._flush_failing = False

    def track(
        self,
        *,
        batcher_depth: Callable[[], float],
        subscriptions: Callable[[], float],
    ) -> None:
        """Read gauges from the running components at scrape time."""
        self.batcher_depth.set_function(batcher_depth)
        self.subscriptions.set_function(subscriptions)

    def track_top_cache(self, cache: TopCacheCounters) -> None:
        """Export the top() cache's counters, read at scrape time."""
        self.registry.register(_TopCacheCollector(cache))

    def track_websockets(self, connections: Callable[[], float]) -> None:
        """Read the number of open WebSocket connections at scrape time."""
        self.websocket_connections.set_function(connections)

    def track_webhook(self, outbox_depth: Callable[[], float]) -> None:
        """Export the webhook's attempts and its outbox depth, read at scrape time
        (server/webhook.py; registered only when a webhook is configured)."""
        self.webhook_attempts = Counter(
            "leaderboard_webhook_attempts",
            "PeriodResult deliveries this instance attempted, by result (failed: retried later).",
            ["result"],
            registry=self.registry,
        )
        for result in (OK, FAILED):
            self.webhook_attempts.labels(result)
        Gauge(
            "leaderboard_webhook_outbox_depth",
            "PeriodResults still to deliver (as this instance last counted them).",
            registry=self.registry,
        ).set_function(outbox_depth)

    def webhook_attempted(self, *, failed: bool) -> None:
        """Record one delivery attempt."""
        self.webhook_attempts.labels(FAILED if failed else OK).inc()

    # The batcher's FlushObserver. A failed flush is always retried (its events stay at
    # the head of the buffer), so every flush that follows a failed one is a retry.

    def flushed(self, events: int, seconds: float) -> None:
        """Record a successful flush."""
        self._flush_attempted(failed=False)
        self.flushes.labels(OK).inc()
        self.flush_events.observe(events)
        self.flush_seconds.labels(OK).observe(seconds)

    def flush_failed(self, events: int, seconds: float) -> None:
        """Record a failed flush (it will be retried)."""
        self._flush_attempted(failed=True)
        self.flushes.labels(FAILED).inc()
        self.flush_seconds.labels(FAILED).observe(seconds)

    def _flush_attempted(self, *, failed: bool) -> None:
        if self._flush_failing:
            self.flush_retries.inc()
        self._flush_failing = failed
        self.refusing_writes.set(1 if failed else 0)

    # The stores' timing observer.

    def observe_store(
        self, store: str, operation: str, seconds: float, *, failed: bool = False
    ) -> None:
        """Record one store call (`store`: redis, history, history-replica)."""
        self.store_seconds.labels(store, operation).observe(seconds)
        if failed:
            self.store_errors.labels(store, operation).inc()

    # The recovery's RebuildObserver.

    def rebuilt(self, players: int, seconds: float) -> None:
        """Record a rebuild that loaded `players` players."""
        self.rebuilds.labels(OK).inc()
        self.rebuild_seconds.observe(seconds)
        self.rebuild_players.observe(players)

    def fenced(self, seconds: float) -> None:
        """Record a rebuild fence passed by every live instance."""
        self.fence_seconds.observe(seconds)

    def reaped(self, periods: int) -> None:
        """Record a dead instance reconciled (`periods` board periods)."""
        self.dead_instances.inc()
        self.dead_instance_periods.inc(periods)

    def rebuild_failed(self, seconds: float) -> None:
        """Record a rebuild that failed (a store was unavailable)."""
        self.rebuilds.labels(FAILED).inc()
        self.rebuild_seconds.observe(seconds)

    # WebSocket admission (server/app.py).

    def websocket_was_refused(self) -> None:
        """Record a WebSocket connection refused at the connection limit."""
        self.websocket_refused.inc()

    def fast_operation(self, kind: str, field: str, code: str, seconds: float) -> None:
        """Record an operation answered by the shortcut (schema/fast_path.py)."""
        key = (kind, field, code)
        children = self._fast_children.get(key)
        if children is None:
            children = self._fast_children[key] = (
                self.operations.labels(kind, field, code),
                self.operation_seconds.labels(kind, field),
            )
        count, duration = children
        count.inc()
        duration.observe(seconds)

    def extension(self) -> type[SchemaExtension]:
        """A Strawberry extension counting and timing operations."""
        metrics = self

        class OperationMetrics(SchemaExtension):
            def on_operation(self) -> Iterator[None]:
                started = time.perf_counter()
                yield
                context = self.execution_context
                # The operation the request runs: none for a syntax error, or a document of
                # several operations that names none of them.
                operation = selected_operation(context)
                kind = operation.operation.value if operation else "invalid"
                field = _root_field(operation)
                result = context.result
                codes = {
                    str((error.extensions or {}).get("code", "UNKNOWN"))
                    for error in (getattr(result, "errors", None) or ())
                }
                for code in codes or {"OK"}:
                    metrics.operations.labels(kind, field, code).inc()
                if kind != "subscription":
                    metrics.operation_seconds.labels(kind, field).observe(
                        time.perf_counter() - started
                    )

        return OperationMetrics


class TopCacheCounters(Protocol):
    """What the top() cache counts (`store.cached_ranking.TopCache`)."""

    hits: int
    misses: int
    inner_reads: int
    invalidations: int


class _TopCacheCollector(Collector):
    """The top() cache's counters as Prometheus counters."""

    def __init__(self, cache: TopCacheCounters) -> None:
        self._cache = cache

    def collect(self) -> Iterator[Metric]:
        cache = self._cache
        reads = CounterMetricFamily(
            "leaderboard_top_cache_reads",
            "topPlayers store reads asked of the per-instance cache, by outcome (hit: served "
            "from a snapshot; miss: joined or started a read of the ranking store).",
            labels=["outcome"],
        )
        reads.add_metric(["hit"], cache.hits)
        reads.add_metric(["miss"], cache.misses)
        yield reads
        yield CounterMetricFamily(
            "leaderboard_top_cache_store_reads",
            "Reads the top cache sent to the ranking store (concurrent misses share one).",
            value=cache.inner_reads,
        )
        yield CounterMetricFamily(
            "leaderboard_top_cache_invalidations",
            "Cached or in-flight top lists dropped early by a write or a change event.",
            value=cache.invalidations,
        )


def _root_field(operation: OperationDefinitionNode | None) -> str:
    # Only schema field names (a small fixed set) become label values, never client text.
    for selection in operation.selection_set.selections if operation else ():
        if isinstance(selection, FieldNode) and selection.name.value in ROOT_FIELDS:
            return selection.name.value
    return "other"
