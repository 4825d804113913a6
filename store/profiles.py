"""`PlayerProfiles`: display names and metadata, durable in the history database and read
through a cache (Redis, shared by every instance; in-process when embedded).

A change goes to the table first (the source of truth: acknowledged only once stored), then
to the cache with its version; a read asks the cache for every name in one round trip, and
the table only for the names the cache lacks (one query), caching what it finds (a player
without a profile too, as version 0) unless an erasure forgot an entry in between. A cache
that lost its data (Redis restarted empty) refills itself on the next reads: nothing is
lost, and no bulk rebuild is needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from store.models import NO_PROFILE, PlayerProfile, StoredProfile
from store.ports import ProfileCache


class ProfileTable(Protocol):
    """The source of truth of the profiles (store/sql/profiles.py)."""

    async def change(self, username: str, display_name: Any, metadata: Any) -> StoredProfile:
        """Set the given fields, leave the others; the stored result."""
        ...

    async def get(self, usernames: Sequence[str]) -> dict[str, StoredProfile]:
        """The stored profiles of those players who have one."""
        ...


class PlayerProfiles:
    """Profiles read through `cache` from `table`, and changed in the table, then the cache."""

    def __init__(self, table: ProfileTable, cache: ProfileCache) -> None:
        self._table = table
        self._cache = cache

    async def change(self, username: str, display_name: Any, metadata: Any) -> PlayerProfile:
        """Set the given fields (the table's `LEAVE` leaves one, None clears it), durably;
        then the cache. The profile now stored."""
        stored = await self._table.change(username, display_name, metadata)
        await self._cache.put({username: stored})
        return stored.profile

    async def forget(self, username: str) -> None:
        """Drop a player's cache entry (erasePlayer: its row was deleted first, in the same
        transaction as the player's history and ban rows: store/sql/players.py)."""
        await self._cache.forget([username])

    async def profiles(self, usernames: Sequence[str]) -> dict[str, PlayerProfile]:
        """Every named player's profile (`NO_PROFILE` when never set): one cache round trip,
        plus one table query for the names the cache lacks."""
        if not usernames:
            return {}
        cached, stamp = await self._cache.read(usernames)
        missing = [username for username in usernames if username not in cached]
        if missing:
            found = await self._table.get(missing)
            filled = {
                username: found.get(username) or StoredProfile(version=0, profile=NO_PROFILE)
                for username in missing
            }
            # Not over an erasure that ran since the read above (its table read may have
            # found the row the erasure then deleted): `ProfileCache.fill`.
            await self._cache.fill(filled, stamp)
            cached = {**cached, **filled}
        return {username: cached[username].profile for username in usernames}
