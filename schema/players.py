"""Player reads beyond the hot three: named players (`players`: friends, a party, a clan) and
the whole ranking page by page (`ranking`, with `RankedPlayerConnection` and `PageInfo`)."""

from __future__ import annotations

import strawberry

from schema.context import ApiContext
from schema.profiles import ranked_views
from schema.types import GLOBAL, RankedPlayer

Info = strawberry.Info[ApiContext, None]


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class RankedPlayerEdge:
    cursor: str
    node: RankedPlayer


@strawberry.type
class RankedPlayerConnection:
    edges: list[RankedPlayerEdge]
    page_info: PageInfo
    total_count: int = strawberry.field(description="Players with a score in the period.")


@strawberry.type
class PlayerQueries:
    @strawberry.field(
        description=(
            "Up to 100 named players (friends, a party, a clan) with their board-wide ranks, "
            "best first; players without a score are left out."
        )
    )
    async def players(
        self,
        info: Info,
        usernames: list[str],
        board: strawberry.ID = GLOBAL,
        period: str | None = None,
    ) -> list[RankedPlayer]:
        players = await info.context.service.players(board, period, usernames)
        return await ranked_views(info, players)

    @strawberry.field(
        description=(
            "The whole ranking, page by page (first 1..100). Cursors are stable: a player "
            "whose score does not change is never skipped or repeated while paging."
        )
    )
    async def ranking(
        self,
        info: Info,
        board: strawberry.ID = GLOBAL,
        period: str | None = None,
        first: int = 10,
        after: str | None = None,
    ) -> RankedPlayerConnection:
        page = await info.context.service.ranking(board, period, first, after)
        nodes = await ranked_views(info, page.players)
        edges = [
            RankedPlayerEdge(cursor=cursor, node=node)
            for node, cursor in zip(nodes, page.cursors, strict=True)
        ]
        return RankedPlayerConnection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=page.has_next,
                end_cursor=page.cursors[-1] if page.cursors else None,
            ),
            total_count=page.total,
        )
