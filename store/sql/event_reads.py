"""A period's raw events as a rebuild reads them, from `score_events` and, once `leaderboard
archive` moved some, from `score_events_archive` too.

Each read first looks for archived rows of the period (one seek on the archive's primary
key) and, inside the same read snapshot, runs the hot-table statement when there are none
(every live and pending period: the archive holds final periods only), else the statement
over both tables. Both tables in one statement, and the check in the same snapshot, so a
batch moved meanwhile is read once, never twice or not at all. The union costs a
materialized per-player aggregate (measured 1.8x the hot statement's time on a period of
2,000 players): paid only by periods that have archived rows.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator
from typing import Any, Final

import aiomysql

from store.models import REMOVAL_ID_PREFIX
from store.sql.dialect import Dialect, Row

REMOVAL_ID_PATTERN: Final = REMOVAL_ID_PREFIX + "%"

_ARCHIVED = "SELECT 1 FROM score_events_archive WHERE board = {p} AND period = {p} LIMIT 1"

# An index-only range scan of score_events_totals (docs/history.md).
_TOTALS = (
    "SELECT username, SUM(delta) FROM score_events WHERE board = {p} AND period = {p} "
    "AND username NOT IN (SELECT username FROM player_bans) GROUP BY username"
)
# Each table aggregated on its own (the hot part stays index-only), the parts added up.
_TOTALS_BOTH = (
    "SELECT username, SUM(total) FROM ("
    "SELECT username, SUM(delta) AS total FROM score_events "
    "WHERE board = {p} AND period = {p} "
    "AND username NOT IN (SELECT username FROM player_bans) GROUP BY username "
    "UNION ALL SELECT username, SUM(delta) AS total FROM score_events_archive "
    "WHERE board = {p} AND period = {p} "
    "AND username NOT IN (SELECT username FROM player_bans) GROUP BY username"
    ") AS parts GROUP BY username"
)
# Players with a removal row in the period (found on the event-id index: removal ids start
# with '!', outside the client and generated alphabets) and whether they scored again after
# their last removal: the rows before this column existed count as one start (they all
# predate any removal). See docs/moderation.md.
_PRESENCE = (
    "SELECT username, SUM(COALESCE(presence, 0)) + MAX(presence IS NULL) FROM score_events "
    "WHERE board = {p} AND period = {p} AND username IN ("
    "SELECT username FROM score_events WHERE board = {p} AND period = {p} "
    "AND event_id LIKE {p}) GROUP BY username"
)
_PRESENCE_BOTH = (
    "SELECT username, SUM(started) + MAX(unmarked) FROM ("
    "SELECT username, SUM(COALESCE(presence, 0)) AS started, MAX(presence IS NULL) AS unmarked "
    "FROM score_events WHERE board = {p} AND period = {p} AND username IN ("
    "SELECT username FROM score_events WHERE board = {p} AND period = {p} "
    "AND event_id LIKE {p} UNION SELECT username FROM score_events_archive "
    "WHERE board = {p} AND period = {p} AND event_id LIKE {p}) GROUP BY username UNION ALL "
    "SELECT username, SUM(COALESCE(presence, 0)) AS started, MAX(presence IS NULL) AS unmarked "
    "FROM score_events_archive WHERE board = {p} AND period = {p} AND username IN ("
    "SELECT username FROM score_events WHERE board = {p} AND period = {p} "
    "AND event_id LIKE {p} UNION SELECT username FROM score_events_archive "
    "WHERE board = {p} AND period = {p} AND event_id LIKE {p}) GROUP BY username"
    ") AS parts GROUP BY username"
)
_CLIENT_EVENTS = (
    "SELECT username, event_id, delta FROM score_events "
    "WHERE board = {p} AND period = {p} AND client_event_id AND id_life >= {p}"
)
_CLIENT_EVENTS_BOTH = (
    "SELECT username, event_id, delta FROM score_events "
    "WHERE board = {p} AND period = {p} AND client_event_id AND id_life >= {p} "
    "UNION ALL SELECT username, event_id, delta FROM score_events_archive "
    "WHERE board = {p} AND period = {p} AND client_event_id AND id_life >= {p}"
)
# Each writer's highest sequence in the period (idempotency per writer): a key range of
# writer_sequences, kept by the appends; archived periods have none (`leaderboard archive`
# deletes them: a writer's calls land in the current period only).
_WRITERS = "SELECT writer_id, sequence FROM writer_sequences WHERE board = {p} AND period = {p}"
# NULL (a row of an INCREMENT board) sorts first on both databases; ties by insertion.
# A removal row (presence -1) carries the instant it was made on the ranking's clock.
_WRITES = (
    "SELECT username, applied_at_us, delta, presence FROM score_events "
    "WHERE board = {p} AND period = {p} "
    "AND username NOT IN (SELECT username FROM player_bans) ORDER BY applied_at_us, id"
)
_WRITES_BOTH = (
    "SELECT username, applied_at_us, delta, presence FROM ("
    "SELECT username, applied_at_us, delta, presence, id FROM score_events "
    "WHERE board = {p} AND period = {p} "
    "AND username NOT IN (SELECT username FROM player_bans) UNION ALL "
    "SELECT username, applied_at_us, delta, presence, id FROM score_events_archive "
    "WHERE board = {p} AND period = {p} "
    "AND username NOT IN (SELECT username FROM player_bans)) AS parts "
    "ORDER BY applied_at_us, id"
)


class PeriodEvents:
    """The rebuild's reads of one period's events, on a driver connection."""

    def __init__(self, dialect: Dialect, *, sqlite: bool) -> None:
        self._dialect = dialect
        self._sqlite = sqlite
        p = dialect.placeholder
        self._archived = _ARCHIVED.format(p=p)
        self._totals = (_TOTALS.format(p=p), _TOTALS_BOTH.format(p=p))
        self._presence = (_PRESENCE.format(p=p), _PRESENCE_BOTH.format(p=p))
        self._client_events = (_CLIENT_EVENTS.format(p=p), _CLIENT_EVENTS_BOTH.format(p=p))
        self._writes = (_WRITES.format(p=p), _WRITES_BOTH.format(p=p))
        self._writers = _WRITERS.format(p=p)

    async def totals(self, connection: Any, board: str, period: str) -> tuple[list[Row], list[Row]]:
        """(username, summed delta) without banned players, and (username, presence sum)
        of the players with a removal row in the period."""
        async with self._snapshot(connection):
            both = await self._has_archived(connection, board, period)
            pair = (board, period)
            totals = await self._dialect.fetch(connection, self._totals[both], pair * (1 + both))
            removals = (board, period, REMOVAL_ID_PATTERN) * (1 + both)
            presence = await self._dialect.fetch(
                connection, self._presence[both], (board, period, *removals) * (1 + both)
            )
            return totals, presence

    async def client_events(
        self, connection: Any, board: str, period: str, since_life: int
    ) -> list[Row]:
        """(username, event id, delta) of each client-supplied event id of the period whose
        idempotency-window bucket (`id_life`) is `since_life` or later."""
        return await self._read(connection, self._client_events, board, period, since_life)

    async def writers(self, connection: Any, board: str, period: str) -> list[Row]:
        """(writer id, highest sequence) of each writer that wrote to the period."""
        return await self._dialect.fetch(connection, self._writers, (board, period))

    async def writes(self, connection: Any, board: str, period: str) -> list[Row]:
        """(username, applied_at_us, delta, presence) of every write, in the order applied."""
        return await self._read(connection, self._writes, board, period)

    async def _read(
        self,
        connection: Any,
        statements: tuple[str, str],
        board: str,
        period: str,
        *more: int,
    ) -> list[Row]:
        async with self._snapshot(connection):
            both = await self._has_archived(connection, board, period)
            return await self._dialect.fetch(
                connection, statements[both], (board, period, *more) * (1 + both)
            )

    async def _has_archived(self, connection: Any, board: str, period: str) -> int:
        return 1 if await self._dialect.fetch(connection, self._archived, (board, period)) else 0

    @contextlib.asynccontextmanager
    async def _snapshot(self, connection: Any) -> AsyncIterator[None]:
        """One read view for the statements inside (InnoDB: a consistent snapshot; SQLite in
        WAL mode: a read transaction)."""
        begin = "BEGIN" if self._sqlite else "START TRANSACTION WITH CONSISTENT SNAPSHOT"
        await self._dialect.execute(connection, begin)
        try:
            yield
        except BaseException:
            with contextlib.suppress(sqlite3.Error, aiomysql.Error, OSError):
                await self._dialect.execute(connection, "ROLLBACK")
            raise
        await self._dialect.execute(connection, "COMMIT")
