"""The seasons' GraphQL side: `Leaderboard.periods` (`PeriodConnection`, `PeriodEdge`,
`PeriodSummary`) and the `PeriodResult` that `periodEnded` pushes (docs/seasons.md)."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry

from resolvers.errors import unavailable
from resolvers.seasons import Seasons, encode_cursor
from schema.context import ApiContext
from schema.players import PageInfo
from schema.types import RankedPlayer
from store.models import PeriodResult as PeriodResultValue
from store.models import PeriodSummary as PeriodSummaryValue

Info = strawberry.Info[ApiContext, None]


@strawberry.type
class PeriodSummary:
    board: strawberry.ID
    period: str
    starts_at: str = strawberry.field(description="UTC instants, ISO 8601.")
    ends_at: str | None
    player_count: int
    final: bool = strawberry.field(
        description="True once the period has ended and its final standings are frozen."
    )

    @classmethod
    def of(cls, summary: PeriodSummaryValue) -> PeriodSummary:
        """The GraphQL view of a period summary."""
        return cls(
            board=strawberry.ID(summary.board),
            period=summary.period,
            starts_at=summary.starts_at,
            ends_at=summary.ends_at,
            player_count=summary.player_count,
            final=summary.final,
        )


@strawberry.type
class PeriodEdge:
    cursor: str
    node: PeriodSummary


@strawberry.type
class PeriodConnection:
    edges: list[PeriodEdge]
    page_info: PageInfo


@strawberry.type(description="The final standings of a period that has just ended.")
class PeriodResult:
    board: strawberry.ID
    period: str
    player_count: int
    top: list[RankedPlayer] = strawberry.field(
        description=(
            "The best players (up to 100), exact: every event of the period "
            "that was acknowledged is counted."
        )
    )

    @classmethod
    def of(cls, result: PeriodResultValue) -> PeriodResult:
        """The GraphQL view of a period's result."""
        return cls(
            board=strawberry.ID(result.board),
            period=result.period,
            player_count=result.player_count,
            top=[RankedPlayer.of(player) for player in result.top],
        )


def _seasons(info: Info) -> Seasons:
    seasons = info.context.service.seasons
    if seasons is None:
        raise unavailable("period archives are not running on this instance")
    return seasons


async def periods(info: Info, board_id: str, first: int, after: str | None) -> PeriodConnection:
    """A page of a board's periods with scores, newest first."""
    service = info.context.service
    board = service.board(board_id)
    summaries, has_next = await _seasons(info).periods(board, first, after, service.player_count)
    edges = [
        PeriodEdge(cursor=encode_cursor(summary.period), node=PeriodSummary.of(summary))
        for summary in summaries
    ]
    return PeriodConnection(
        edges=edges,
        page_info=PageInfo(has_next_page=has_next, end_cursor=edges[-1].cursor if edges else None),
    )


async def period_ended(info: Info, board_id: str) -> AsyncGenerator[PeriodResult, None]:
    """Every result of the board from now on."""
    info.context.service.board(board_id)
    async for result in _seasons(info).ended(board_id):
        yield PeriodResult.of(result)
