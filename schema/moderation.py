"""Player moderation's GraphQL side (admin token): removePlayer, banPlayer, unbanPlayer,
erasePlayer, `PlayerRemoval`, and the ban lookup `bannedPlayer`."""

from __future__ import annotations

from datetime import UTC, datetime

import strawberry

from resolvers.auth import require_admin
from resolvers.errors import ApiError, ErrorCode
from resolvers.moderation import PlayerModeration, Removal
from schema.context import ApiContext

Info = strawberry.Info[ApiContext, None]


@strawberry.type(description="What a moderation or erasure did.")
class PlayerRemoval:
    username: str
    rankings_changed: int = strawberry.field(
        description="Board periods whose live ranking lost the player."
    )
    events_deleted: int = strawberry.field(
        description="History rows deleted (erasePlayer only; 0 otherwise)."
    )

    @classmethod
    def of(cls, removal: Removal) -> PlayerRemoval:
        """The GraphQL view of a removal."""
        return cls(
            username=removal.username,
            rankings_changed=removal.rankings_changed,
            events_deleted=removal.events_deleted,
        )


@strawberry.type(description="A player's ban: their writes are refused with FORBIDDEN.")
class PlayerBan:
    username: str
    reason: str | None
    banned_at: str = strawberry.field(description="When the ban was made: a UTC instant, ISO 8601.")


def _moderation(info: Info) -> PlayerModeration:
    require_admin(info.context.access, info.context.admin_enabled)
    moderation = info.context.moderation
    if moderation is None:
        raise ApiError(ErrorCode.FORBIDDEN, "players cannot be moderated on this instance")
    return moderation


@strawberry.type
class ModerationQueries:
    @strawberry.field(
        description="A player's ban (admin token); null when the player is not banned."
    )
    async def banned_player(self, info: Info, username: str) -> PlayerBan | None:
        record = await _moderation(info).ban_record(username)
        if record is None:
            return None
        at = datetime.fromtimestamp(record.banned_at_ms / 1000, tz=UTC)
        return PlayerBan(
            username=record.username,
            reason=record.reason,
            banned_at=at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        )


@strawberry.type
class ModerationMutations:
    @strawberry.mutation(
        description=(
            "Take a player off one board's period (admin token); later submissions start afresh."
        )
    )
    async def remove_player(
        self, info: Info, username: str, board: strawberry.ID, period: str | None = None
    ) -> PlayerRemoval:
        return PlayerRemoval.of(await _moderation(info).remove(username, board, period))

    @strawberry.mutation(
        description=(
            "Take a player off every live ranking and refuse their writes with FORBIDDEN "
            "until unbanned (admin token)."
        )
    )
    async def ban_player(
        self, info: Info, username: str, reason: str | None = None
    ) -> PlayerRemoval:
        return PlayerRemoval.of(await _moderation(info).ban(username, reason))

    @strawberry.mutation(
        description=(
            "Lift a ban; the player's scores in live periods come back from the history "
            "(admin token)."
        )
    )
    async def unban_player(self, info: Info, username: str) -> bool:
        return await _moderation(info).unban(username)

    @strawberry.mutation(
        description=(
            "Erase everything stored about a player, in every board and period, history "
            "included; irreversible (admin token)."
        )
    )
    async def erase_player(self, info: Info, username: str) -> PlayerRemoval:
        return PlayerRemoval.of(await _moderation(info).erase(username))
