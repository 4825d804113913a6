"""Boards at run time: create, change the caps of, archive and look up a board (admin scope).

Every update rule, order, tie-break, time zone and cap is served (docs/boards.md): the
write scripts apply the rules and check the caps atomically.
"""

from __future__ import annotations

from resolvers.errors import ApiError, ErrorCode, bad_input, unavailable
from store.board_model import BoardSpec, SortOrder, TieBreak, UpdateRule, spec_problems
from store.board_registry import BoardRegistry
from store.boards import ResetPeriod
from store.errors import StoreUnavailable
from store.sql.boards import BoardExists, TooManyBoards


class BoardAdmin:
    """The board operations, over the registry; the caller has checked the admin token."""

    def __init__(self, registry: BoardRegistry, *, max_boards: int) -> None:
        self._registry = registry
        self._max_boards = max_boards

    def get(self, board_id: str) -> BoardSpec:
        """A served board's spec, or NOT_FOUND."""
        spec = self._registry.spec(board_id)
        if spec is None:
            raise ApiError(ErrorCode.NOT_FOUND, f"unknown board {board_id!r}")
        return spec

    async def create(
        self,
        *,
        board_id: str,
        reset: ResetPeriod,
        update_rule: UpdateRule,
        sort_order: SortOrder,
        tie_break: TieBreak,
        time_zone: str,
        min_score: int | None,
        max_score: int | None,
        max_delta: int | None,
    ) -> BoardSpec:
        """Store and serve a new board; BAD_USER_INPUT for an invalid or existing one."""
        spec = BoardSpec(
            id=board_id,
            reset=reset,
            update_rule=update_rule,
            sort_order=sort_order,
            tie_break=tie_break,
            time_zone=time_zone,
            min_score=min_score,
            max_score=max_score,
            max_delta=max_delta,
        )
        problems = spec_problems(spec)
        if problems:
            raise bad_input("; ".join(problems))
        if self._registry.spec(board_id) is not None:
            raise bad_input(f"board {board_id!r} exists")
        try:
            return await self._registry.create(spec, max_boards=self._max_boards)
        except BoardExists:
            raise bad_input(f"board {board_id!r} exists") from None
        except TooManyBoards:
            raise bad_input(
                f"the service holds its most boards ({self._max_boards}, "
                "LEADERBOARD_MAX_BOARDS; archived boards count too)"
            ) from None
        except StoreUnavailable as error:
            raise unavailable(f"the board could not be stored: {error}") from None

    async def update_caps(
        self,
        board_id: str,
        min_score: int | None,
        max_score: int | None,
        max_delta: int | None,
    ) -> BoardSpec:
        """Set a board's caps (null: no cap); BAD_USER_INPUT for invalid caps, NOT_FOUND."""
        current = self.get(board_id)
        spec = BoardSpec(
            id=current.id,
            reset=current.reset,
            update_rule=current.update_rule,
            sort_order=current.sort_order,
            tie_break=current.tie_break,
            time_zone=current.time_zone,
            min_score=min_score,
            max_score=max_score,
            max_delta=max_delta,
            shards=current.shards,
        )
        problems = spec_problems(spec)
        if problems:
            raise bad_input("; ".join(problems))
        try:
            changed = await self._registry.update_caps(board_id, min_score, max_score, max_delta)
        except StoreUnavailable as error:
            raise unavailable(f"the board could not be changed: {error}") from None
        if changed is None:
            raise ApiError(ErrorCode.NOT_FOUND, f"unknown board {board_id!r}")
        return changed

    async def archive(self, board_id: str) -> BoardSpec:
        """Stop a board taking writes (idempotent); NOT_FOUND for an unknown board."""
        self.get(board_id)
        try:
            archived = await self._registry.archive(board_id)
        except StoreUnavailable as error:
            raise unavailable(f"the board could not be archived: {error}") from None
        if archived is None:
            raise ApiError(ErrorCode.NOT_FOUND, f"unknown board {board_id!r}")
        return archived
