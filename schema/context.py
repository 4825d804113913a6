"""What every resolver receives: the service, the live feed, and whether the caller may write."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from resolvers.live import LiveRankings
    from resolvers.service import LeaderboardService


@dataclass(slots=True)
class ApiContext:
    """Per-request context; `authorized` is true when a valid write token was presented."""

    service: LeaderboardService
    live: LiveRankings
    authorized: bool
