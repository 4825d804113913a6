"""One final period's reads, from its frozen standings (docs/seasons.md, "Past reads").

`Seasons.frozen` hands the service a `FinalPeriod` when the period asked for is final; its
reads answer what the live rankings answered at the period's end (the standings were
folded as a rebuild folds the history and put in the board's order), each standing with
the period's player count (for topPercent).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from store.boards import Board
from store.models import PageKey, RankedPlayer, RankingPage
from store.sql.final_reads import FinalReads


@dataclass(frozen=True, slots=True)
class FinalPeriod:
    """A board period that is final: its frozen standings and player count."""

    board: Board
    period: str
    standings: FinalReads
    player_count: int

    async def top(self, limit: int, offset: int) -> list[RankedPlayer]:
        """Players at positions offset+1 .. offset+limit."""
        return self._counted(await self.standings.top(self.board.id, self.period, limit, offset))

    async def player(self, username: str) -> RankedPlayer | None:
        """One player's final standing, or None."""
        found = await self.standings.player(self.board.id, self.period, username)
        return None if found is None else self._counted([found])[0]

    async def neighborhood(self, username: str, radius: int, fill: bool) -> list[RankedPlayer]:
        """The player and up to `radius` players above and below (filled with `fill`)."""
        return self._counted(
            await self.standings.neighborhood(
                self.board.id, self.period, username, radius, fill=fill
            )
        )

    async def players(self, usernames: Sequence[str]) -> list[RankedPlayer]:
        """The named players with a score, best first."""
        return self._counted(await self.standings.players(self.board.id, self.period, usernames))

    async def page(self, first: int, after: PageKey | None) -> RankingPage:
        """Up to `first` players after the place `after`, with their order keys."""
        page = await self.standings.page(
            self.board.id,
            self.period,
            first,
            after,
            order=self.board.sort_order,
            tie_break=self.board.tie_break,
        )
        return dataclasses.replace(page, players=tuple(self._counted(list(page.players))))

    def _counted(self, players: list[RankedPlayer]) -> list[RankedPlayer]:
        return [dataclasses.replace(player, player_count=self.player_count) for player in players]
