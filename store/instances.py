"""The instance registry: which service instances are alive, the rebuild fence between
them, and the board periods each may hold unflushed events of (docs/reliability.md,
"Fence" and "A dead instance").

`InstanceRegistry` is what the service needs of it; `store/redis/instances.py` keeps it
in Redis. The embedded store has none: one process is the only instance, so a fence has
nobody else to wait for and nobody can die without taking the store with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True, kw_only=True)
class Heartbeat:
    """What an instance learns from its heartbeat."""

    fence: int
    """The latest fence asked for (0: none): pass it by flushing, then report it."""
    known: bool
    """Whether the registry knew this instance before (False: new, reaped, or Redis lost
    its data)."""
    age_ms: int
    """How long this registry has existed."""
    live: tuple[str, ...]
    """Instances whose heartbeat deadline has not passed."""
    dead: tuple[str, ...]
    """Instances past their deadline and not yet reaped (at most a few per beat)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FenceState:
    """A fence and who has not passed it yet."""

    fence: int
    age_ms: int
    """The registry's age: younger than a heartbeat round, not every live instance may
    have registered again after Redis lost its data."""
    waiting: tuple[str, ...]
    """Live instances that have not reported passing the fence."""
    live: tuple[str, ...]
    """Every live instance."""


class InstanceRegistry(Protocol):
    """Registration, heartbeats, fences and dead instances' dirty periods."""

    async def heartbeat(self, instance: str, ttl_seconds: float, passed: int) -> Heartbeat:
        """Register or refresh `instance` until ttl from now; record the fence it passed."""
        ...

    async def fence(self, fence: int = 0) -> FenceState:
        """Ask for a new fence (0), or check on `fence`: who has not passed it."""
        ...

    async def leave(self, instance: str) -> None:
        """Take `instance` out after a clean stop (its buffer is written)."""
        ...

    async def reap(self, instance: str) -> list[tuple[str, str]] | None:
        """Claim a dead instance: its dirty (board, period) list, or None when it is alive
        or another instance claimed it first."""
        ...

    async def dirty(
        self, instance: str, periods: Sequence[tuple[str, str]], generation: int, *, declare: bool
    ) -> None:
        """Declare (before writing) or retire (once flushed) board periods of `instance`."""
        ...
