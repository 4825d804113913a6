"""What the stores tell about their own calls (for metrics); the server implements it."""

from __future__ import annotations

from typing import Protocol


class StoreObserver(Protocol):
    """Told how long each store operation took."""

    def observe_store(
        self, store: str, operation: str, seconds: float, *, failed: bool = False
    ) -> None:
        """One call of `operation` on `store` (redis, history, history-replica) took `seconds`."""
        ...
