"""The built code path for `history_rows.py`'s `built` variants: the schema the service's
migrations create (migration 11: the player registry, no username index) and its own
append, `MySqlDialect.insert` with a per-instance `PlayerRegistry` (one transaction: the
epoch share-locked, the players the cache has not seen registered, the events)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from store.sql import migrations, schema_steps
from store.sql.mysql import MySqlDialect
from store.sql.registry import PlayerRegistry

Row = tuple[Any, ...]

_PACKET_BYTES = 16 * 1024 * 1024 - 1024  # MariaDB's default max_allowed_packet, less slack


class BuiltAppender:
    """One instance's history writer: a dialect and its registry cache, fresh per run.

    `before`: the code path before migration 11 on its schema (migrations 1-10, the
    username index): the same `MySqlDialect._insert`, one autocommit INSERT per flush
    without writers, no epoch and no registry."""

    def __init__(self, *, before: bool = False) -> None:
        self.before = before
        self.dialect = MySqlDialect()
        self.registry = PlayerRegistry()

    async def create_schema(self, connection: Any) -> None:
        """The migrations, as `SqlScoreHistory.migrate` runs them (up to 10 `before`)."""
        steps = schema_steps.MIGRATIONS
        if self.before:
            schema_steps.MIGRATIONS = steps[:10]
        try:
            await migrations.migrate(self.dialect, connection)
        finally:
            schema_steps.MIGRATIONS = steps

    async def warm(self, connection: Any, rows: Sequence[Row]) -> None:
        """Register the rows' players and teach the cache, as an instance that already
        flushed them in this period has (not measured: the steady state)."""
        full = [(*row, None, None) for row in rows]
        triples = self.registry.unregistered(0, full)
        async with connection.cursor() as cursor:
            await cursor.executemany(
                "INSERT IGNORE INTO player_periods (username, board, period) VALUES (%s,%s,%s)",
                triples,
            )
        self.registry.registered(0, triples)

    async def append(self, connection: Any, rows: Sequence[Row]) -> None:
        """A batch the way `SqlScoreHistory.append` stores it (no writer ids)."""
        # history_rows' rows lack the writer columns (NULL without a writer).
        full = [(*row, None, None) for row in rows]
        if not self.before:
            await self.dialect.insert(connection, full, [], self.registry)
            return
        async with connection.cursor() as cursor:
            await self.dialect._insert(cursor, full, _PACKET_BYTES)
