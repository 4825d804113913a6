"""Query, Mutation and Subscription: thin resolvers that call the service."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry

from resolvers.errors import unauthenticated
from resolvers.service import IncrementRequest
from schema import seasons
from schema.boards import BoardMutations, BoardQueries, Leaderboard, leaderboard_view
from schema.context import ApiContext
from schema.moderation import ModerationMutations, ModerationQueries
from schema.players import PlayerQueries
from schema.profiles import ProfileMutations, ranked_views, selects_any, selects_profiles
from schema.scalars import Long
from schema.seasons import PeriodResult
from schema.types import (
    GLOBAL,
    RankChange,
    RankedPlayer,
    ScoreIncrement,
    ScoreSubmission,
    ScoreUpdate,
)

Info = strawberry.Info[ApiContext, None]

_RANK = frozenset({"rank"})
"""A write's ranks are computed only when selected: they are most of its Redis cost."""


@strawberry.type
class Query(BoardQueries, PlayerQueries, ModerationQueries):
    @strawberry.field(
        description=(
            "The boards this service serves (configured at start-up; "
            "`global`, MONTHLY, always exists)."
        )
    )
    def leaderboards(self, info: Info) -> list[Leaderboard]:
        return [leaderboard_view(info, board.id) for board in info.context.service.boards]

    @strawberry.field(description="Best players first. limit 1..100, offset >= 0.")
    async def top_players(
        self,
        info: Info,
        board: strawberry.ID = GLOBAL,
        limit: int = 10,
        offset: int = 0,
        period: str | None = None,
    ) -> list[RankedPlayer]:
        players = await info.context.service.top(board, period, limit, offset)
        return await ranked_views(info, players)

    @strawberry.field(
        description="One player's standing; null when the player has no score in the period."
    )
    async def player(
        self,
        info: Info,
        username: str,
        board: strawberry.ID = GLOBAL,
        period: str | None = None,
    ) -> RankedPlayer | None:
        player = await info.context.service.player(board, period, username)
        return None if player is None else (await ranked_views(info, [player]))[0]

    @strawberry.field(
        description=(
            "The player and up to `radius` players ranked directly above and below,\n"
            "best first (radius 0..50). Empty when the player has no score in the period.\n"
            "With fill: true, 2 * radius + 1 players whenever the period has that many:\n"
            "the window shifts down at the top and up at the bottom."
        )
    )
    async def neighborhood(
        self,
        info: Info,
        username: str,
        radius: int = 5,
        board: strawberry.ID = GLOBAL,
        period: str | None = None,
        fill: bool = False,
    ) -> list[RankedPlayer]:
        players = await info.context.service.neighborhood(board, period, username, radius, fill)
        return await ranked_views(info, players)


_WRITER_NOTE = (
    "writerId and sequence (both or neither; writerId spelled as an eventId, sequence\n"
    "0..2^53 - 1): idempotency per writer. The call is not applied (applied: false, the\n"
    "current standing) when the writer's last applied call in a board period it touches\n"
    "had this sequence or a later one. Send one call at a time per writer, sequences\n"
    "increasing (gaps are fine); retry a call with the same sequence."
)


def _require_write_token(info: Info) -> None:
    if not info.context.authorized:
        raise unauthenticated()


@strawberry.type
class Mutation(BoardMutations, ProfileMutations, ModerationMutations):
    @strawberry.mutation(
        description=(
            "Add delta to the player's score in the board's current period.\n"
            "Needs the write token (header X-Internal-Token, or Authorization: Bearer).\n"
            + _WRITER_NOTE
        )
    )
    async def increment_score(
        self,
        info: Info,
        username: str,
        delta: int = 1,
        board: strawberry.ID = GLOBAL,
        event_id: str | None = None,
        writer_id: str | None = None,
        sequence: Long | None = None,
    ) -> ScoreUpdate:
        _require_write_token(info)
        request = IncrementRequest(username=username, delta=delta, board=board, event_id=event_id)
        (outcome,) = await info.context.service.increment(
            [request], writer_id, sequence, ranks=selects_any(info, _RANK)
        )
        return ScoreUpdate.of(outcome)

    @strawberry.mutation(
        description=(
            "Many increments in one call (1..1000), in order; "
            "all are validated before any is applied.\n" + _WRITER_NOTE
        )
    )
    async def increment_scores(
        self,
        info: Info,
        increments: list[ScoreIncrement],
        writer_id: str | None = None,
        sequence: Long | None = None,
    ) -> list[ScoreUpdate]:
        _require_write_token(info)
        requests = [
            IncrementRequest(
                username=item.username, delta=item.delta, board=item.board, event_id=item.event_id
            )
            for item in increments
        ]
        outcomes = await info.context.service.increment(
            requests, writer_id, sequence, ranks=selects_any(info, _RANK)
        )
        return [ScoreUpdate.of(outcome) for outcome in outcomes]

    @strawberry.mutation(
        description=(
            "Submit a score to a BEST or LATEST board (write token). On an INCREMENT\n"
            "board it is refused with BAD_USER_INPUT (use incrementScore).\n" + _WRITER_NOTE
        )
    )
    async def set_score(
        self,
        info: Info,
        username: str,
        score: Long,
        board: strawberry.ID,
        event_id: str | None = None,
        writer_id: str | None = None,
        sequence: Long | None = None,
    ) -> ScoreSubmission:
        _require_write_token(info)
        outcome = await info.context.service.set_score(
            username, score, board, event_id, writer_id, sequence
        )
        return ScoreSubmission.of(outcome)


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description=(
            "The player's standing now (when the player has a score), then every change\n"
            "of it: when the player scores, and when others pass the player or fall below."
        )
    )
    async def rank_changed(
        self, info: Info, username: str, board: strawberry.ID = GLOBAL
    ) -> AsyncGenerator[RankChange, None]:
        info.context.service.subscribable_player(board, username)
        named = selects_profiles(info)
        async for update in info.context.live.watch_player(board, username):
            display_name = None
            if named:
                profiles = await info.context.service.profiles([update.username])
                display_name = profiles[update.username].display_name or update.username
            yield RankChange(
                username=update.username,
                board=strawberry.ID(update.board),
                period=update.period,
                score=Long(update.score),
                rank=update.rank,
                previous_rank=update.previous_rank,
                display_name=display_name,
            )

    @strawberry.subscription(
        description=(
            "Once per period end of the board: its final standings (rewards, season results)."
        )
    )
    async def period_ended(
        self, info: Info, board: strawberry.ID = GLOBAL
    ) -> AsyncGenerator[PeriodResult, None]:
        async for result in seasons.period_ended(info, board):
            yield result

    @strawberry.subscription(
        description="The top `limit` (1..100) now, then the new list each time it changes."
    )
    async def top_players_changed(
        self, info: Info, board: strawberry.ID = GLOBAL, limit: int = 10
    ) -> AsyncGenerator[list[RankedPlayer], None]:
        info.context.service.subscribable_top(board, limit)
        async for players in info.context.live.watch_top(board, limit):
            yield await ranked_views(info, players)
