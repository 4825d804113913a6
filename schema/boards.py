"""The board model's GraphQL side: `Leaderboard`, its enums, `LeaderboardInput`, and the
admin operations on boards (`leaderboard(id)`, create, update caps, archive)."""

from __future__ import annotations

import enum

import strawberry

from resolvers.auth import require_admin
from resolvers.boards import BoardAdmin
from resolvers.errors import ApiError, ErrorCode
from schema import seasons
from schema.context import ApiContext
from schema.scalars import Long
from schema.seasons import PeriodConnection
from schema.types import ResetPeriod
from store import board_model
from store import boards as board_values
from store.board_model import BoardSpec

Info = strawberry.Info[ApiContext, None]


@strawberry.enum(description="How a board combines a player's submissions in one period.")
class UpdateRule(enum.Enum):
    INCREMENT = strawberry.enum_value(
        "increment",
        description=(
            "add each delta (incrementScore); the default, and the only rule of the boards above"
        ),
    )
    BEST = strawberry.enum_value(
        "best",
        description=(
            "keep the player's best submission (highest on DESC boards, lowest on ASC boards)"
        ),
    )
    LATEST = strawberry.enum_value("latest", description="keep the player's latest submission")


@strawberry.enum
class SortOrder(enum.Enum):
    DESC = strawberry.enum_value(
        "desc", description="highest score ranks first (points); the default"
    )
    ASC = strawberry.enum_value("asc", description="lowest score ranks first (race times, strokes)")


@strawberry.enum(description="How equal scores rank.")
class TieBreak(enum.Enum):
    SHARED = strawberry.enum_value(
        "shared",
        description=(
            "equal scores share a rank (1, 2, 2, 4), listed by username ascending; the default"
        ),
    )
    EARLIEST = strawberry.enum_value(
        "earliest",
        description="who reached the score first ranks higher; ranks are unique (1, 2, 3, 4)",
    )


@strawberry.input
class LeaderboardInput:
    id: strawberry.ID = strawberry.field(description="1..64 of [A-Za-z0-9_.-]")
    reset: ResetPeriod = ResetPeriod.MONTHLY
    update_rule: UpdateRule = UpdateRule.INCREMENT
    sort_order: SortOrder = SortOrder.DESC
    tie_break: TieBreak = TieBreak.SHARED
    time_zone: str = strawberry.field(
        default="UTC",
        description=(
            "IANA time zone in which periods start (e.g. Europe/Paris): "
            "a daily board resets at local midnight."
        ),
    )
    min_score: Long | None = strawberry.field(
        default=None,
        description=(
            "Submissions or totals outside [minScore, maxScore] are refused with BAD_USER_INPUT."
        ),
    )
    max_score: Long | None = None
    max_delta: Long | None = strawberry.field(
        default=None,
        description=(
            "Largest |delta| one increment may carry on this board (default: the service's bound)."
        ),
    )


@strawberry.type
class Leaderboard:
    id: strawberry.ID
    reset: ResetPeriod
    current_period: str = strawberry.field(description="Id of the period that is live now.")
    update_rule: UpdateRule
    sort_order: SortOrder
    tie_break: TieBreak
    time_zone: str
    min_score: Long | None
    max_score: Long | None
    max_delta: Long | None
    active: bool = strawberry.field(
        description="False once archived: reads still work, writes are refused."
    )

    @strawberry.field(description="Players with a score in the period (default: the current one).")
    async def player_count(self, info: Info, period: str | None = None) -> int:
        return await info.context.service.player_count(self.id, period)

    @strawberry.field(description="Periods that have scores, newest first.")
    async def periods(
        self, info: Info, first: int = 12, after: str | None = None
    ) -> PeriodConnection:
        return await seasons.periods(info, self.id, first, after)

    @classmethod
    def of(cls, board: board_values.Board, spec: BoardSpec | None = None) -> Leaderboard:
        """The GraphQL view of a board (its spec when known, else what the board says)."""
        if spec is None:
            spec = BoardSpec(
                id=board.id,
                reset=board.reset,
                time_zone=board.time_zone,
                max_delta=board.max_delta,
                active=board.active,
                shards=board.shards,
            )
        return cls(
            id=strawberry.ID(board.id),
            reset=ResetPeriod.of(board.reset),
            current_period=board.current_period(),
            update_rule=UpdateRule(spec.update_rule.value),
            sort_order=SortOrder(spec.sort_order.value),
            tie_break=TieBreak(spec.tie_break.value),
            time_zone=spec.time_zone,
            min_score=None if spec.min_score is None else Long(spec.min_score),
            max_score=None if spec.max_score is None else Long(spec.max_score),
            max_delta=None if spec.max_delta is None else Long(spec.max_delta),
            active=spec.active,
        )


def leaderboard_view(info: Info, board_id: str) -> Leaderboard:
    """The view of a served board (NOT_FOUND otherwise), with its spec when the registry has it."""
    board = info.context.service.board(board_id)
    admin = info.context.boards
    return Leaderboard.of(board, None if admin is None else admin.get(board_id))


def _admin(info: Info) -> BoardAdmin:
    require_admin(info.context.access, info.context.admin_enabled)
    admin = info.context.boards
    if admin is None:
        raise ApiError(ErrorCode.FORBIDDEN, "boards cannot be changed on this instance")
    return admin


@strawberry.type
class BoardQueries:
    @strawberry.field(description="One board, or NOT_FOUND.")
    def leaderboard(self, info: Info, id: strawberry.ID) -> Leaderboard:
        return leaderboard_view(info, id)


@strawberry.type
class BoardMutations:
    @strawberry.mutation(
        description=(
            "Create a board at run time (admin token). "
            "Served by every instance within a second; survives restarts."
        )
    )
    async def create_leaderboard(self, info: Info, input: LeaderboardInput) -> Leaderboard:
        spec = await _admin(info).create(
            board_id=input.id,
            reset=board_values.ResetPeriod(input.reset.value),
            update_rule=board_model.UpdateRule(input.update_rule.value),
            sort_order=board_model.SortOrder(input.sort_order.value),
            tie_break=board_model.TieBreak(input.tie_break.value),
            time_zone=input.time_zone,
            min_score=input.min_score,
            max_score=input.max_score,
            max_delta=input.max_delta,
        )
        return leaderboard_view(info, spec.id)

    @strawberry.mutation(
        description=(
            "Change a board's caps (admin token); its rule, order, ties and reset cannot change."
        )
    )
    async def update_leaderboard(
        self,
        info: Info,
        id: strawberry.ID,
        min_score: Long | None = None,
        max_score: Long | None = None,
        max_delta: Long | None = None,
    ) -> Leaderboard:
        spec = await _admin(info).update_caps(id, min_score, max_score, max_delta)
        return leaderboard_view(info, spec.id)

    @strawberry.mutation(
        description="Stop a board taking writes (admin token); its periods stay readable."
    )
    async def archive_leaderboard(self, info: Info, id: strawberry.ID) -> Leaderboard:
        spec = await _admin(info).archive(id)
        return leaderboard_view(info, spec.id)
