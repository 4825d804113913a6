"""Which players are banned: the `player_bans` table, kept in step across instances.

The table is the source of truth. At start the registry loads every banned username into
an in-process set, which the write path checks with one set lookup (no Redis or SQL round
trip per write). A ban or unban made on any instance reaches the others through a notice
(`store.board_notices`' Redis channel kind, on its own channel) carrying the username, on
which the receiver re-reads that row; the periodic reload of the whole table (every
`reload_seconds`) is the safety net for a lost notice, so every instance refuses a banned
player's writes within that interval.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from store.board_notices import BoardNotices, follow, unfollow
from store.sql.players import BanRecord, SqlPlayerRecords

logger = logging.getLogger(__name__)


class BanRegistry:
    """The banned usernames, served from memory (see the module doc)."""

    def __init__(
        self, records: SqlPlayerRecords, notices: BoardNotices, *, reload_seconds: float = 1.0
    ) -> None:
        self._records = records
        self._notices = notices
        self._reload_seconds = reload_seconds
        self.names: set[str] = set()
        """Shared with the service's write path: changed in place, never replaced."""
        self._tasks: list[asyncio.Task[None]] = []
        # Bumped by every change made or heard here: a reload that overlapped one may have
        # read the table before it, so it is not applied (the next one is).
        self._changes = 0
        self.heard: Callable[[], None] | None = None
        """Called when another instance's ban, unban or erasure of a player is heard: what
        caches data derived from a player's presence drops it (final periods' player counts,
        which an erasure lowers)."""

    def is_banned(self, username: str) -> bool:
        """Whether the player is banned (as this instance knows it)."""
        return username in self.names

    async def start(self) -> None:
        """Load the table, then follow notices and reload periodically."""
        await self.reload()
        self._tasks = follow(
            self._notices,
            self.refresh,
            self.reload,
            reload_seconds=self._reload_seconds,
            name="ban",
            log=logger,
        )

    async def stop(self) -> None:
        """Stop following changes and close the notices' connection."""
        tasks, self._tasks = self._tasks, []
        await unfollow(tasks, self._notices)

    async def record(self, username: str) -> BanRecord | None:
        """The stored ban of a player, or None."""
        return await self._records.ban(username)

    async def ban(self, username: str, reason: str | None, now_ms: int) -> None:
        """Store a ban, refuse the player here at once and tell the others."""
        await self._records.store_ban(username, reason, now_ms)
        self._changes += 1
        self.names.add(username)
        await self._notices.publish(username)

    async def unban(self, username: str) -> bool:
        """Delete a ban, accept the player here at once and tell the others; False when
        the player was not banned."""
        deleted = await self._records.delete_ban(username)
        self._changes += 1
        self.names.discard(username)
        await self._notices.publish(username)
        return deleted

    async def refresh(self, username: str) -> None:
        """Re-read one player's row (after a notice)."""
        stored = await self._records.ban(username)
        self._changes += 1
        if stored is None:
            self.names.discard(username)
        else:
            self.names.add(username)
        if self.heard is not None:
            self.heard()

    async def reload(self) -> None:
        """Re-read the whole table, in place."""
        changes = self._changes
        stored = await self._records.banned_usernames()
        if changes != self._changes:
            return
        self.names.intersection_update(stored)
        self.names.update(stored)
