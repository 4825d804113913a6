"""Reads of final periods from `period_standings` (docs/seasons.md, "Past reads").

Every read is an index lookup on the primary key (board, period, position) or the unique
key (board, period, username): a top page is a position range, a player one lookup, a
neighbourhood the position range around the player, a cursor page a position range after
the cursor's place. As fast after 10M events as after 10.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from store.board_kinds import SortOrder, TieBreak
from store.models import PageKey, RankedPlayer, RankingPage
from store.sql.dialect import Dialect
from store.sql.frozen_rows import FrozenRow, order_key, place, sign

T = TypeVar("T")

Runner = Callable[[str, Callable[[Any], Awaitable[T]]], Awaitable[T]]


class FinalReads:
    """The reads of final periods; `SqlStandings` adds the writes."""

    def __init__(self, dialect: Dialect, run: Runner[Any]) -> None:
        self._dialect = dialect
        self._run = run
        p = dialect.placeholder
        self._p = p
        # Only the driver's placeholder is spliced in; values are bound parameters.
        self._page = (
            "SELECT username, score, player_rank, reached_us FROM period_standings "  # noqa: S608
            f"WHERE board = {p} AND period = {p} AND position > {p} AND position <= {p} "
            "ORDER BY position"
        )
        self._player = (
            "SELECT username, score, player_rank, position, reached_us "  # noqa: S608
            f"FROM period_standings WHERE board = {p} AND period = {p} AND username = {p}"
        )

    async def top(self, board: str, period: str, limit: int, offset: int) -> list[RankedPlayer]:
        """Players at positions offset+1 .. offset+limit of a final period."""
        return [_player(row) for row in await self._rows(board, period, offset, offset + limit)]

    async def player(self, board: str, period: str, username: str) -> RankedPlayer | None:
        """One player's final standing, or None."""
        row = await self._player_row(board, period, username)
        return None if row is None else _player(row)

    async def neighborhood(
        self, board: str, period: str, username: str, radius: int, *, fill: bool = False
    ) -> list[RankedPlayer]:
        """The player and up to `radius` players above and below, in a final period (with
        `fill`, the window shifts at the top and bottom to hold 2 * radius + 1 players)."""
        row = await self._player_row(board, period, username)
        if row is None:
            return []
        position = int(row[3])
        start = max(0, position - radius - 1)
        end = position + radius
        if fill:
            count = await self._player_total(board, period)
            start = max(0, min(start, count - (2 * radius + 1)))
            end = start + 2 * radius + 1
        return [_player(found) for found in await self._rows(board, period, start, end)]

    async def players(
        self, board: str, period: str, usernames: Sequence[str]
    ) -> list[RankedPlayer]:
        """The named players of a final period that have a score, best first (rank, then
        username), as the live stores answer `players`."""
        names = sorted(set(usernames))
        if not names:
            return []
        p = self._p
        marks = ", ".join([p] * len(names))
        select = (
            "SELECT username, score, player_rank FROM period_standings "  # noqa: S608
            f"WHERE board = {p} AND period = {p} AND username IN ({marks})"
        )

        async def query(connection: Any) -> list[Any]:
            return await self._dialect.fetch(connection, select, (board, period, *names))

        found = [_player(row) for row in await self._run("final_players", query)]
        found.sort(key=lambda player: (player.rank, player.username))
        return found

    async def page(
        self,
        board: str,
        period: str,
        first: int,
        after: PageKey | None,
        *,
        order: SortOrder,
        tie_break: TieBreak,
    ) -> RankingPage:
        """Up to `first` players after the place `after` (from the top without one), with
        the order keys the live rankings give the same players (cursors keep working
        across the period's end)."""
        start = 0
        if after is not None:
            start = await self._position_after(board, period, after, order, tie_break)
        # One row more than the page: whether more follow, whatever erasures left.
        rows = await self._rows(board, period, start, start + first + 1)
        more = len(rows) > first
        rows = rows[:first]
        total = await self._player_total(board, period)
        keys = tuple(
            order_key(
                order,
                tie_break,
                FrozenRow(0, str(row[0]), int(row[1]), 0, None if row[3] is None else int(row[3])),
            )
            for row in rows
        )
        return RankingPage(
            players=tuple(_player(row) for row in rows),
            keys=keys,
            total=total,
            has_next=more,
        )

    async def _position_after(
        self, board: str, period: str, key: PageKey, order: SortOrder, tie_break: TieBreak
    ) -> int:
        """How many players come up to and including the place `key`: the player's own
        position when the key is still its place (one lookup), else a count."""
        stored, instant, username = place(tie_break, key)
        factor = sign(order)
        row = await self._player_row(board, period, username)
        if row is not None:
            earned = int(row[4] or 0) if tie_break is TieBreak.EARLIEST else 0
            if (factor * int(row[1]), earned) == (stored, instant):
                return int(row[3])
        p = self._p
        reached = "COALESCE(reached_us, 0)" if tie_break is TieBreak.EARLIEST else "0"
        # The board's order spelt out: better stored score, then instant, then username.
        select = (
            "SELECT COUNT(*) FROM period_standings "  # noqa: S608
            f"WHERE board = {p} AND period = {p} AND ({factor} * score < {p} "
            f"OR ({factor} * score = {p} AND ({reached} < {p} "
            f"OR ({reached} = {p} AND username <= {p}))))"
        )
        parameters = (board, period, stored, stored, instant, instant, username)

        async def query(connection: Any) -> list[Any]:
            return await self._dialect.fetch(connection, select, parameters)

        return int((await self._run("final_after", query))[0][0])

    async def _rows(self, board: str, period: str, start: int, end: int) -> list[Any]:
        """The rows at positions start+1 .. end."""

        async def query(connection: Any) -> list[Any]:
            return await self._dialect.fetch(connection, self._page, (board, period, start, end))

        rows: list[Any] = await self._run("final_page", query)
        return rows

    async def _player_total(self, board: str, period: str) -> int:
        p = self._p
        select = f"SELECT player_count FROM period_results WHERE board = {p} AND period = {p}"  # noqa: S608

        async def query(connection: Any) -> list[Any]:
            return await self._dialect.fetch(connection, select, (board, period))

        rows = await self._run("final_count", query)
        return int(rows[0][0]) if rows else 0

    async def _player_row(self, board: str, period: str, username: str) -> Any:
        async def query(connection: Any) -> list[Any]:
            return await self._dialect.fetch(connection, self._player, (board, period, username))

        rows = await self._run("final_player", query)
        return rows[0] if rows else None


def _player(row: Any, player_count: int = 0) -> RankedPlayer:
    return RankedPlayer(
        username=str(row[0]), score=int(row[1]), rank=int(row[2]), player_count=player_count
    )
