"""`InProcessProfileCache`: the profile cache of the embedded mode, a dict in this process in
front of the SQLite table (the only instance, so nothing else can change it)."""

from __future__ import annotations

from collections.abc import Sequence

from store.models import StoredProfile

DEFAULT_MAX_ENTRIES = 1_000_000
"""Entries kept before the cache starts over (a profile is at most ~1.2 KB: ~1 GB worst case
is far above a real game's read set; the table refills it)."""


class InProcessProfileCache:
    """`ProfileCache` in process memory, bounded: once full it is emptied and refills."""

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self._entries: dict[str, StoredProfile] = {}
        self._max_entries = max_entries
        self._generation = 0
        """Moved on by `forget`: a refill read before it is not cached."""

    async def get(self, usernames: Sequence[str]) -> dict[str, StoredProfile]:
        """The cached entries of the named players."""
        entries = self._entries
        return {name: entries[name] for name in usernames if name in entries}

    async def read(
        self, usernames: Sequence[str]
    ) -> tuple[dict[str, StoredProfile], dict[str, int]]:
        """The cached entries, and the generation a `fill` checks."""
        return await self.get(usernames), {"": self._generation}

    async def fill(self, entries: dict[str, StoredProfile], stamp: dict[str, int]) -> None:
        """`put`, unless something was forgotten since `stamp` was read."""
        if stamp.get("") == self._generation:
            await self.put(entries)

    async def put(self, entries: dict[str, StoredProfile]) -> None:
        """Cache entries, each only over an older version."""
        if len(self._entries) + len(entries) > self._max_entries:
            self._entries.clear()
        for username, stored in entries.items():
            current = self._entries.get(username)
            if current is None or stored.version > current.version:
                self._entries[username] = stored

    async def forget(self, usernames: Sequence[str]) -> None:
        """Drop the players' entries; refills read before this are not cached."""
        self._generation += 1
        for username in usernames:
            self._entries.pop(username, None)
