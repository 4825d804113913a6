"""The durable score history backend: the source of truth the live rankings are rebuilt from."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from store.models import ScoreEvent


class ScoreHistory(Protocol):
    """Append-only history of applied score events (MySQL, or SQLite when embedded).

    Failures raise `StoreUnavailable`.
    """

    async def connect(self) -> None:
        """Open the connection pool."""
        ...

    async def close(self) -> None:
        """Close the connection pool."""
        ...

    async def migrate(self) -> None:
        """Create or upgrade the tables; safe to run any number of times, concurrently."""
        ...

    async def append(self, events: Sequence[ScoreEvent]) -> None:
        """Store events with ONE multi-row INSERT; an event already stored (same board,
        period and event id) is skipped, so a retried batch never double-counts."""
        ...

    async def totals(self, board: str, period: str) -> list[tuple[str, int]]:
        """Every player's summed delta in the period."""
        ...

    async def client_events(self, board: str, period: str) -> list[tuple[str, str]]:
        """(username, event id) of the client-supplied event ids stored for the period
        (to restore idempotency; the username says which shard of a board holds it)."""
        ...

    async def ping(self) -> None:
        """Raise `StoreUnavailable` unless the database answers."""
        ...
