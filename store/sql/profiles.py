"""The `player_profiles` table: each player's display name and metadata, the source of truth
the profile caches (Redis, in-process) are filled from.

Created by its migration (schema_steps.py). A change is one upsert (MySQL autocommit;
SQLite in an IMMEDIATE transaction) that raises `version` (to at least the time in ms, so
a row erased and made again still outranks what a cache held of the old one), then a read
of the row: a cache keeps the highest version it is given, so two racing changes leave
every cache with the one stored last.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from store.models import LEAVE, NO_PROFILE, PlayerProfile, StoredProfile
from store.sql.dialect import Dialect, Row

T = TypeVar("T")

Runner = Callable[[str, Callable[[Any], Awaitable[T]]], Awaitable[T]]


def _stored(row: Row) -> StoredProfile:
    display_name, metadata, version = row[1], row[2], row[3]
    return StoredProfile(
        version=int(version),
        profile=PlayerProfile(
            display_name=None if display_name is None else str(display_name),
            metadata=None if metadata is None else str(metadata),
        ),
    )


class SqlProfileTable:
    """Reads and changes of the `player_profiles` table, on the history's connection pool."""

    def __init__(self, dialect: Dialect, run: Runner[Any], *, sqlite: bool) -> None:
        self._dialect = dialect
        self._run = run
        p = dialect.placeholder
        # A flag per field says whether to set it (1) or leave it (0); values are bound
        # parameters, only the driver's placeholder is spliced in.
        if sqlite:
            self._upsert = (
                "INSERT INTO player_profiles "  # noqa: S608
                "(username, display_name, metadata, version, updated_at_ms) "
                f"VALUES ({p}, {p}, {p}, {p}, {p}) ON CONFLICT (username) DO UPDATE SET "
                f"display_name = CASE WHEN {p} THEN excluded.display_name ELSE display_name END, "
                f"metadata = CASE WHEN {p} THEN excluded.metadata ELSE metadata END, "
                "version = MAX(version + 1, excluded.version), "
                "updated_at_ms = excluded.updated_at_ms"
            )
        else:
            self._upsert = (
                "INSERT INTO player_profiles "  # noqa: S608
                "(username, display_name, metadata, version, updated_at_ms) "
                f"VALUES ({p}, {p}, {p}, {p}, {p}) ON DUPLICATE KEY UPDATE "
                f"display_name = IF({p}, VALUES(display_name), display_name), "
                f"metadata = IF({p}, VALUES(metadata), metadata), "
                "version = GREATEST(version + 1, VALUES(version)), "
                "updated_at_ms = VALUES(updated_at_ms)"
            )
        self._select = (
            "SELECT username, display_name, metadata, version FROM player_profiles "
            "WHERE username IN ({})"
        )

    async def change(self, username: str, display_name: Any, metadata: Any) -> StoredProfile:
        """Set the fields given (`LEAVE` leaves one; None clears it); the stored result."""
        now_ms = int(time.time() * 1000)
        parameters = (
            username,
            None if display_name is LEAVE else display_name,
            None if metadata is LEAVE else metadata,
            now_ms,
            now_ms,
            0 if display_name is LEAVE else 1,
            0 if metadata is LEAVE else 1,
        )

        async def statement(connection: Any) -> int:
            return await self._dialect.changing(connection, self._upsert, parameters)

        await self._run("profiles_change", statement)
        stored = await self.get([username])
        return stored.get(username) or StoredProfile(version=0, profile=NO_PROFILE)

    async def get(self, usernames: Sequence[str]) -> dict[str, StoredProfile]:
        """The stored profiles of those players who have a row (one query)."""
        if not usernames:
            return {}
        # Only placeholders are spliced in; the names are bound parameters.
        placeholders = ", ".join([self._dialect.placeholder] * len(usernames))
        statement = self._select.format(placeholders)

        async def query(connection: Any) -> list[Row]:
            return await self._dialect.fetch(connection, statement, tuple(usernames))

        return {str(row[0]): _stored(row) for row in await self._run("profiles_get", query)}
