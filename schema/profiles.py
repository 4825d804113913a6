"""Player profiles on the GraphQL side: `setPlayerProfile`, and the ranked players of an
answer dressed with their display names and metadata, fetched once per answer and only
when the document selects them (so topPlayers, player and neighborhood cost nothing more
when it does not)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson
import strawberry
from strawberry.scalars import JSON
from strawberry.types.nodes import Selection

from resolvers.errors import unauthenticated
from schema.context import ApiContext
from schema.types import RankedPlayer
from store.models import NO_PROFILE, PlayerProfile
from store.models import RankedPlayer as RankedPlayerValue

Info = strawberry.Info[ApiContext, None]

PROFILE_FIELDS = frozenset({"displayName", "metadata"})
"""The fields of a ranked player that need its profile."""


def selects_profiles(info: Info) -> bool:
    """Whether the field's selection asks for a profile field anywhere below it (through
    fragments too)."""
    return selects_any(info, PROFILE_FIELDS)


def selects_any(info: Info, names: frozenset[str]) -> bool:
    """Whether the field's selection asks for one of `names` anywhere below it (through
    fragments too; a field a directive skips counts)."""
    return _any_field(info.selected_fields, names)


def _any_field(selections: Iterable[Selection], names: frozenset[str]) -> bool:
    for selection in selections:
        if getattr(selection, "name", None) in names:
            return True
        if _any_field(selection.selections, names):
            return True
    return False


def metadata_value(profile: PlayerProfile) -> Any:
    """The metadata as a JSON value (None when never set)."""
    return None if profile.metadata is None else orjson.loads(profile.metadata)


async def ranked_views(info: Info, players: Sequence[RankedPlayerValue]) -> list[RankedPlayer]:
    """The GraphQL views of ranked players; their profiles in one fetch when selected."""
    if not players or not selects_profiles(info):
        return [RankedPlayer.of(player) for player in players]
    profiles = await info.context.service.profiles([player.username for player in players])
    return [
        RankedPlayer.of(
            player,
            display_name=(profile := profiles.get(player.username, NO_PROFILE)).display_name,
            metadata=metadata_value(profile),
        )
        for player in players
    ]


@strawberry.type
class ProfileMutations:
    @strawberry.mutation(
        description=(
            "Display name (1..64 printable characters) and metadata of a player, "
            "shown on every board (write token)."
        )
    )
    async def set_player_profile(
        self,
        info: Info,
        username: str,
        display_name: str | None = None,
        metadata: JSON | None = None,
    ) -> bool:
        if not info.context.authorized:
            raise unauthenticated()
        return await info.context.service.set_profile(username, display_name, metadata)
