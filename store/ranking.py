"""The live ranking backend: a small protocol, implemented on Redis and in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Protocol

from store.models import IncrementOutcome, RankedPlayer, ScoreChange, ScoreIncrement


class RankingStore(Protocol):
    """Live rankings of every board's periods.

    Ranks are standard competition ranks: 1 + the number of players with a strictly
    higher score. Lists are ordered by score descending, then username ascending.

    A board's period must be *loaded* (rebuilt from the history, or created empty)
    before it is read or written: every method that touches a period raises
    `RankingNotLoaded` when it is not, so that a Redis that lost its data is noticed
    and rebuilt instead of silently serving or counting from zero. Backend failures
    raise `StoreUnavailable`.
    """

    async def increment(self, increments: Sequence[ScoreIncrement]) -> list[IncrementOutcome]:
        """Apply increments in order, all or none, in one round trip; publish each applied one.

        An increment whose client event id was already applied in its board's period
        is not applied again (its outcome says `applied=False` with current standing).
        Raises `ScoreOutOfRange` (nothing applied) when a total would pass 2^53 - 1.
        """
        ...

    async def top(self, board: str, period: str, limit: int, offset: int) -> list[RankedPlayer]:
        """Players ranked offset+1 .. offset+limit, best first."""
        ...

    async def player(self, board: str, period: str, username: str) -> RankedPlayer | None:
        """One player's standing, or None without a score in the period."""
        ...

    async def neighborhood(
        self, board: str, period: str, username: str, radius: int
    ) -> list[RankedPlayer]:
        """The player and up to `radius` players directly above and below, best first."""
        ...

    async def player_count(self, board: str, period: str) -> int:
        """How many players have a score in the period."""
        ...

    async def totals(self, board: str, period: str) -> dict[str, int]:
        """Every player's total in the period (for reconciliation against the history)."""
        ...

    async def is_loaded(self, board: str, period: str) -> bool:
        """Whether the period's ranking is present and may be served."""
        ...

    async def claim_rebuild(self, board: str, period: str, ttl_seconds: float) -> str | None:
        """Atomically claim the right to rebuild a period (SET NX with expiry).

        Returns a claim token, or None when another instance holds the claim.
        """
        ...

    async def release_rebuild(self, board: str, period: str, token: str) -> None:
        """Give up a claim, only when it is still ours."""
        ...

    async def load(
        self,
        board: str,
        period: str,
        totals: Iterable[tuple[str, int]],
        client_events: Iterable[tuple[str, str]],
    ) -> None:
        """Replace the period's ranking and seen client events (username, event id), then
        mark it loaded, atomically.

        Readers and writers see either the old state (not loaded) or the whole new one.
        """
        ...

    def changes(self, board: str) -> AsyncIterator[ScoreChange]:
        """Every applied increment of the board (all periods), from any instance, as it happens.

        Delivery is best effort (pub/sub may drop messages under pressure): consumers
        resynchronise from reads now and then.
        """
        ...

    async def ping(self) -> None:
        """Raise `StoreUnavailable` unless the backend answers."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
