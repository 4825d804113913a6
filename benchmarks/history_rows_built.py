"""The built code path for `history_rows.py`'s `built` variants: the schema the service's
migrations create (migration 11: the player registry, no username index) and its own
append, `MySqlDialect.insert` with a per-instance `PlayerRegistry` (one transaction: the
epoch share-locked, the players the cache has not seen registered, the events)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from store.sql import migrations
from store.sql.mysql import MySqlDialect
from store.sql.registry import PlayerRegistry

Row = tuple[Any, ...]


class BuiltAppender:
    """One instance's history writer: a dialect and its registry cache, fresh per run."""

    def __init__(self) -> None:
        self.dialect = MySqlDialect()
        self.registry = PlayerRegistry()

    async def create_schema(self, connection: Any) -> None:
        """Every migration, as `SqlScoreHistory.migrate` runs them."""
        await migrations.migrate(self.dialect, connection)

    async def append(self, connection: Any, rows: Sequence[Row]) -> None:
        """A batch the way `SqlScoreHistory.append` stores it (no writer ids)."""
        # history_rows' rows lack the writer columns (NULL without a writer).
        await self.dialect.insert(
            connection, [(*row, None, None) for row in rows], [], self.registry
        )
