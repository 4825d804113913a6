"""Prometheus metrics: one registry per app, exposed at /metrics."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from graphql import FieldNode, OperationDefinitionNode
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from strawberry.extensions import SchemaExtension

from schema.build import ROOT_FIELDS

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    """Every metric the service exports."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.operations = Counter(
            "leaderboard_graphql_operations",
            "GraphQL operations by type, root field and outcome code ('OK' when no error).",
            ["type", "field", "code"],
            registry=self.registry,
        )
        self.operation_seconds = Histogram(
            "leaderboard_graphql_operation_seconds",
            "Time to execute a GraphQL query or mutation.",
            ["type", "field"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.flushes = Counter(
            "leaderboard_batcher_flushes",
            "Flushes of the write buffer to the history, by result.",
            ["result"],
            registry=self.registry,
        )
        self.flush_events = Histogram(
            "leaderboard_batcher_flush_events",
            "Events written by one flush (one multi-row INSERT).",
            buckets=(1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000),
            registry=self.registry,
        )
        self.flush_seconds = Histogram(
            "leaderboard_batcher_flush_seconds",
            "Time of one flush of the write buffer.",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batcher_depth = Gauge(
            "leaderboard_batcher_depth",
            "Events acknowledged but not yet written to the history.",
            registry=self.registry,
        )
        self.subscriptions = Gauge(
            "leaderboard_subscriptions",
            "Live GraphQL subscriptions on this instance.",
            registry=self.registry,
        )
        self.rebuilds = Gauge(
            "leaderboard_rebuilds",
            "Rankings this instance rebuilt from the history since it started.",
            registry=self.registry,
        )

    def track(
        self,
        *,
        batcher_depth: Callable[[], float],
        subscriptions: Callable[[], float],
        rebuilds: Callable[[], float],
    ) -> None:
        """Read gauges from the running components at scrape time."""
        self.batcher_depth.set_function(batcher_depth)
        self.subscriptions.set_function(subscriptions)
        self.rebuilds.set_function(rebuilds)

    # The batcher's FlushObserver.
    def flushed(self, events: int, seconds: float) -> None:
        """Record a successful flush."""
        self.flushes.labels("ok").inc()
        self.flush_events.observe(events)
        self.flush_seconds.observe(seconds)

    def flush_failed(self, events: int, seconds: float) -> None:
        """Record a failed flush (it will be retried)."""
        self.flushes.labels("failed").inc()
        self.flush_seconds.observe(seconds)

    def fast_operation(self, kind: str, field: str, code: str, seconds: float) -> None:
        """Record an operation answered by the shortcut (schema/fast_path.py)."""
        self.operations.labels(kind, field, code).inc()
        self.operation_seconds.labels(kind, field).observe(seconds)

    def extension(self) -> type[SchemaExtension]:
        """A Strawberry extension counting and timing operations."""
        metrics = self

        class OperationMetrics(SchemaExtension):
            def on_operation(self) -> Iterator[None]:
                started = time.perf_counter()
                yield
                context = self.execution_context
                # operation_type raises without a parsed document (a syntax error).
                kind = context.operation_type.value if context.graphql_document else "invalid"
                field = _root_field(context.graphql_document)
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


def _root_field(document: object) -> str:
    # Only schema field names (a small fixed set) become label values, never client text.
    for definition in getattr(document, "definitions", ()):
        if isinstance(definition, OperationDefinitionNode):
            for selection in definition.selection_set.selections:
                if isinstance(selection, FieldNode) and selection.name.value in ROOT_FIELDS:
                    return selection.name.value
    return "other"
