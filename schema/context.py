"""What every resolver receives: the service, the live feed, and whether the caller may write."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from resolvers.auth import Access

if TYPE_CHECKING:
    from resolvers.boards import BoardAdmin
    from resolvers.live import LiveRankings
    from resolvers.moderation import PlayerModeration
    from resolvers.service import LeaderboardService


@dataclass(slots=True)
class ApiContext:
    """Per-request context; `authorized` is true when a valid write (or admin) token was
    presented, `access` says which kind, `admin_enabled` whether admin tokens exist at all."""

    service: LeaderboardService
    live: LiveRankings
    authorized: bool
    access: Access = Access.NONE
    admin_enabled: bool = False
    boards: BoardAdmin | None = None
    moderation: PlayerModeration | None = None
