"""Unsharded boards (one sorted set per period): each read is one script call, and on a
single Redis concurrent increments share script calls (coalescing.py)."""

from __future__ import annotations

from collections.abc import Sequence

from store.errors import (
    EventIdReused,
    RankingNotLoaded,
    ScoreBeyondCap,
    ScoreOutOfRange,
    StoreUnavailable,
)
from store.models import IncrementOutcome, PageKey, RankedPlayer, RankingPage, ScoreIncrement
from store.redis.coalescing import CoalescedCalls
from store.redis.scripts import Scripts

COALESCED_MAX_INCREMENTS = 256
"""Most increments of concurrent calls merged into one script call (a caller's own batch
is never split): enough to absorb a burst, short enough not to hold Redis for long."""
COALESCED_MAX_IN_FLIGHT = 4
"""Merged script calls out at once; more concurrent calls wait to join the next one."""


class SingleBoards:
    """Reads and writes of unsharded boards, each one script call."""

    def __init__(self, scripts: Scripts) -> None:
        self._scripts = scripts
        self._coalesced: CoalescedCalls[ScoreIncrement, IncrementOutcome] = CoalescedCalls(
            # A merged call computes ranks when one of its callers wants them.
            lambda increments: scripts.increment(increments, ranks=False),
            flagged=scripts.increment,
            max_items=COALESCED_MAX_INCREMENTS,
            max_in_flight=COALESCED_MAX_IN_FLIGHT,
            # The script refused the whole call before writing anything.
            retry_alone=(RankingNotLoaded, ScoreOutOfRange, EventIdReused, ScoreBeyondCap),
            abandoned=lambda: StoreUnavailable(
                "the Redis call was abandoned (shutting down); whether it applied is unknown"
            ),
        )

    async def increment(
        self, increments: Sequence[ScoreIncrement], *, ranks: bool = True
    ) -> list[IncrementOutcome]:
        """Apply and publish (when watched) in one script call, shared with concurrent calls
        (single Redis only: on a cluster a call's keys must share a slot, see cluster.py);
        without `ranks`, ranks may be 0."""
        return await self._coalesced(increments, flag=ranks)

    async def drain(self) -> None:
        """Wait until every increment submitted so far has been answered."""
        await self._coalesced.drain()

    async def top(self, board: str, period: str, limit: int, offset: int) -> list[RankedPlayer]:
        """Players ranked offset+1 .. offset+limit (top.lua)."""
        return await self._scripts.top(board, period, limit, offset)

    async def player(self, board: str, period: str, username: str) -> RankedPlayer | None:
        """One player's standing (player.lua)."""
        return await self._scripts.player(board, period, username)

    async def neighborhood(
        self, board: str, period: str, username: str, radius: int, *, fill: bool = False
    ) -> list[RankedPlayer]:
        """The player and up to `radius` players above and below (neighborhood.lua)."""
        return await self._scripts.neighborhood(board, period, username, radius, fill=fill)

    async def player_count(self, board: str, period: str) -> int:
        """How many players have a score (player_count.lua)."""
        return await self._scripts.player_count(board, period)

    async def players(
        self, board: str, period: str, usernames: Sequence[str]
    ) -> list[RankedPlayer]:
        """The named players that have a score, best first (players.lua: one call)."""
        players = await self._scripts.players(board, period, usernames)
        players.sort(key=lambda player: (player.rank, player.username))
        return players

    async def page(self, board: str, period: str, first: int, after: PageKey | None) -> RankingPage:
        """Up to `first` players after the place `after` (page.lua: one call)."""
        return await self._scripts.page(board, period, first, after)
