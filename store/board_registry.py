"""Which boards this instance serves: the `boards` table, kept in step across instances.

The table is the source of truth. At start the registry loads it, inserts the boards
`LEADERBOARD_BOARDS` declares that it lacks, and refuses to start when a declared board
differs from its stored row. Afterwards a board created or changed on any instance reaches
this one through a notice (`store.board_notices`) and, as the safety net, through a
reload of the whole table every `reload_seconds`. Every component serving boards shares
the registry's `BoardIndex`, so an installed board is served at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from store.board_model import BoardSpec
from store.board_notices import BoardNotices, follow, unfollow
from store.boards import Board, BoardIndex
from store.sql.boards import BoardExists, SqlBoardTable

logger = logging.getLogger(__name__)


class BoardConflict(Exception):
    """A board `LEADERBOARD_BOARDS` declares differs from the stored one of the same id."""


def board_of(spec: BoardSpec) -> Board:
    """What the stores and the service need of a spec."""
    return Board(
        spec.id,
        spec.reset,
        spec.shards,
        time_zone=spec.time_zone,
        max_delta=spec.max_delta,
        active=spec.active,
        update_rule=spec.update_rule,
        sort_order=spec.sort_order,
        tie_break=spec.tie_break,
        min_score=spec.min_score,
        max_score=spec.max_score,
    )


def declared_spec(board: Board) -> BoardSpec:
    """The spec of a board `LEADERBOARD_BOARDS` declares (INCREMENT, DESC, SHARED, UTC)."""
    return BoardSpec(id=board.id, reset=board.reset, shards=board.shards)


def _layout(spec: BoardSpec) -> str:
    # Everything but the caps and `active`: what decides how stored scores read.
    return (
        f"{spec.reset.value}/{spec.update_rule.value}/{spec.sort_order.value}/"
        f"{spec.tie_break.value}/{spec.time_zone}/shards={spec.shards}"
    )


class BoardRegistry:
    """The boards of the `boards` table, served through one shared `BoardIndex`."""

    def __init__(
        self,
        table: SqlBoardTable,
        notices: BoardNotices,
        declared: Sequence[Board],
        *,
        reload_seconds: float = 1.0,
    ) -> None:
        self._table = table
        self._notices = notices
        self._declared = tuple(declared)
        self._reload_seconds = reload_seconds
        self.index = BoardIndex(declared)
        """Shared with the stores, the service and the live feed (see `board_index`)."""
        self._specs: dict[str, tuple[BoardSpec, int]] = {
            board.id: (declared_spec(board), 0) for board in declared
        }
        self._tasks: list[asyncio.Task[None]] = []

    def spec(self, board_id: str) -> BoardSpec | None:
        """The spec of a served board, or None."""
        known = self._specs.get(board_id)
        return None if known is None else known[0]

    @property
    def count(self) -> int:
        """Boards served."""
        return len(self._specs)

    async def start(self) -> None:
        """Load the table, add the declared boards it lacks (`BoardConflict` on a mismatch),
        then follow notices and reload periodically."""
        stored = {spec.id: (spec, version) for spec, version in await self._table.all()}
        for board in self._declared:
            declared = declared_spec(board)
            if board.id not in stored:
                # Another instance may insert it meanwhile: compared below all the same.
                with contextlib.suppress(BoardExists):
                    await self._table.insert(declared, max_boards=None)
                row = await self._table.get(board.id)
                assert row is not None, board.id
                stored[board.id] = row
            spec = stored[board.id][0]
            if _layout(spec) != _layout(declared):
                raise BoardConflict(
                    f"LEADERBOARD_BOARDS declares board {board.id!r} as {_layout(declared)}, "
                    f"the boards table has {board.id!r} as {_layout(spec)}: declare it as "
                    "stored, or remove it from LEADERBOARD_BOARDS"
                )
        for spec, version in stored.values():
            self._install(spec, version)
        self._tasks = follow(
            self._notices,
            self.refresh,
            self.reload,
            reload_seconds=self._reload_seconds,
            name="board",
            log=logger,
        )

    async def stop(self) -> None:
        """Stop following changes and close the notices' connection."""
        tasks, self._tasks = self._tasks, []
        await unfollow(tasks, self._notices)

    async def create(self, spec: BoardSpec, *, max_boards: int) -> BoardSpec:
        """Store a new board, serve it here and tell the others. `BoardExists`, `TooManyBoards`."""
        await self._table.insert(spec, max_boards=max_boards)
        await self.refresh(spec.id)
        await self._notices.publish(spec.id)
        return self.spec(spec.id) or spec

    async def update_caps(
        self, board_id: str, min_score: int | None, max_score: int | None, max_delta: int | None
    ) -> BoardSpec | None:
        """Set a stored board's caps; None when it is not stored."""
        if not await self._table.update_caps(board_id, min_score, max_score, max_delta):
            return None
        return await self._changed(board_id)

    async def archive(self, board_id: str) -> BoardSpec | None:
        """Stop a stored board taking writes; None when it is not stored."""
        if not await self._table.archive(board_id):
            return None
        return await self._changed(board_id)

    async def refresh(self, board_id: str) -> None:
        """Re-read one board's row (after a notice, or a change made here)."""
        row = await self._table.get(board_id)
        if row is not None:
            self._install(*row)

    async def reload(self) -> None:
        """Re-read the whole table."""
        for spec, version in await self._table.all():
            self._install(spec, version)

    async def _changed(self, board_id: str) -> BoardSpec | None:
        await self.refresh(board_id)
        await self._notices.publish(board_id)
        return self.spec(board_id)

    def _install(self, spec: BoardSpec, version: int) -> None:
        known = self._specs.get(spec.id)
        if known is not None and known[1] > version:
            return  # a newer version is served already (a late notice or reload)
        if known is not None and known[0] == spec:
            self._specs[spec.id] = (spec, version)
            return
        self._specs[spec.id] = (spec, version)
        self.index.put(board_of(spec))
        if known is None:
            logger.info("serving board %s (%s)", spec.id, _layout(spec))


__all__ = ["BoardConflict", "BoardRegistry", "board_of", "declared_spec"]
