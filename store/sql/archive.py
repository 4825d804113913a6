"""The event archive: raw rows of final periods moved out of `score_events`, and deleted.

Created by migration 9 (docs/history.md, "Archive and retention"). `score_events_archive`
has the columns of `score_events`, clustered on (board, period, event_id, id_life).

- `move` moves one bounded batch of a period's rows in one transaction: the keys of up to
  `rows` rows (locked on MySQL; SQLite's IMMEDIATE transaction holds the write lock), the
  same rows copied into the archive, then deleted from `score_events`. Both or neither
  commit, so a row is always in exactly one of the two tables; an interrupted run rolls
  back its open batch and the next run takes up where it stopped. A row whose key the
  archive already holds (the same event, replayed into an archived period) is not copied
  again, only deleted.
- `purge` deletes one bounded batch of a period's rows from one table (retention).
- `forget_writers` deletes the period's `writer_sequences` rows (idempotency per writer,
  migration 10): a final period takes no more writes, so nothing restores them.
- `forget_players` deletes the period's player registry rows (migration 11) once its hot
  rows are gone (moved or purged), bumping the erasure epoch in the same transaction.
- `compact` rebuilds the hot table once its old rows are gone (MySQL: an online
  `ALTER TABLE … FORCE`; SQLite: nothing, see its docstring), without a time limit.

Which periods may go where is decided by `store.event_archive`; this module only moves.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar

from store.sql.dialect import EVENT_COLUMNS, Dialect, periods_in, write_transaction
from store.sql.registry import EPOCH_BUMP

T = TypeVar("T")

Runner = Callable[[str, Callable[[Any], Awaitable[T]]], Awaitable[T]]

HOT: Final = "score_events"
ARCHIVE: Final = "score_events_archive"
TABLES: Final = (HOT, ARCHIVE)

_COLUMNS: Final = "id, " + EVENT_COLUMNS


class SqlEventArchive:
    """Moves and deletes raw event rows of whole periods, batch by batch, on the primary."""

    def __init__(
        self,
        dialect: Dialect,
        run: Runner[Any],
        *,
        sqlite: bool,
        patient: Runner[Any] | None = None,
    ) -> None:
        self._dialect = dialect
        self._run = run
        self._patient = patient or run
        self._sqlite = sqlite
        self._p = dialect.placeholder

    async def archived_periods(self, board: str) -> list[str]:
        """Every period of a board with rows in the archive, oldest first (`periods_in`)."""

        async def query(connection: Any) -> list[str]:
            return await periods_in(self._dialect, connection, ARCHIVE, board)

        periods: list[str] = await self._run("archive_periods", query)
        return periods

    async def move(self, board: str, period: str, rows: int) -> int:
        """Move up to `rows` rows of the period into the archive, in one transaction; how
        many left `score_events` (0: none was left)."""
        p = self._p
        lock = "" if self._sqlite else " FOR UPDATE"
        pick = (
            f"SELECT event_id FROM {HOT} WHERE board = {p} AND period = {p} "  # noqa: S608
            f"ORDER BY event_id LIMIT {int(rows)}{lock}"
        )

        async def transaction(connection: Any) -> int:
            async with self._transaction(connection):
                picked = await self._dialect.fetch(connection, pick, (board, period))
                if not picked:
                    return 0
                # An id used again after the idempotency window has a row per life
                # (`id_life`): its lives move together, and the count is of rows.
                ids = tuple(sorted({str(row[0]) for row in picked}))
                marks = ", ".join([p] * len(ids))
                where = f"WHERE board = {p} AND period = {p} AND event_id IN ({marks})"
                if self._sqlite:
                    copy = (
                        f"INSERT INTO {ARCHIVE} ({_COLUMNS}) SELECT {_COLUMNS} FROM {HOT} "  # noqa: S608
                        f"{where} ON CONFLICT (board, period, event_id, id_life) DO NOTHING"
                    )
                else:
                    copy = (
                        f"INSERT INTO {ARCHIVE} ({_COLUMNS}) SELECT {_COLUMNS} FROM {HOT} "  # noqa: S608
                        f"{where} ON DUPLICATE KEY UPDATE {ARCHIVE}.id = {ARCHIVE}.id"
                    )
                delete = f"DELETE FROM {HOT} {where}"  # noqa: S608
                await self._dialect.execute(connection, copy, (board, period, *ids))
                if self._sqlite:
                    cursor = await connection.execute(delete, (board, period, *ids))
                    return int(cursor.rowcount)
                async with connection.cursor() as cursor:
                    return int(await cursor.execute(delete, (board, period, *ids)))

        moved: int = await self._run("archive_move", transaction)
        return moved

    async def purge(self, table: str, board: str, period: str, rows: int) -> int:
        """Delete up to `rows` rows of the period from `table` (one of `TABLES`), committed;
        how many went (0: none was left)."""
        if table not in TABLES:
            raise ValueError(f"not an event table: {table!r}")
        p = self._p
        if self._sqlite:
            # SQLite's DELETE takes no LIMIT unless built with it: the keys by a subquery.
            key = "id" if table == HOT else "event_id"
            delete = (
                f"DELETE FROM {table} WHERE board = {p} AND period = {p} AND {key} IN ("  # noqa: S608
                f"SELECT {key} FROM {table} WHERE board = {p} AND period = {p} "
                f"LIMIT {int(rows)})"
            )
            parameters: tuple[str, ...] = (board, period, board, period)
        else:
            # MariaDB refuses LIMIT in an IN subquery; DELETE ... LIMIT walks the key range.
            delete = f"DELETE FROM {table} WHERE board = {p} AND period = {p} LIMIT {int(rows)}"  # noqa: S608
            parameters = (board, period)

        async def statement(connection: Any) -> int:
            async with self._transaction(connection):
                if self._sqlite:
                    cursor = await connection.execute(delete, parameters)
                    return int(cursor.rowcount)
                async with connection.cursor() as cursor:
                    return int(await cursor.execute(delete, parameters))

        purged: int = await self._run("archive_purge", statement)
        return purged

    async def forget_writers(self, board: str, period: str) -> int:
        """Delete the period's writer_sequences rows (one per writer, a key range),
        committed; how many went."""
        p = self._p
        delete = f"DELETE FROM writer_sequences WHERE board = {p} AND period = {p}"  # noqa: S608

        async def statement(connection: Any) -> int:
            return await self._dialect.changing(connection, delete, (board, period))

        forgotten: int = await self._run("archive_forget_writers", statement)
        return forgotten

    async def forget_players(self, board: str, period: str, rows: int) -> int:
        """Delete up to `rows` of the period's player registry rows (migration 11) of
        players with no row of it left in `score_events`, committed; how many went (0: none
        was left). Run once the period's hot rows are all archived or purged: the archive
        finds its rows by its own username index. The epoch bump first
        (store/sql/registry.py, rule 2): a flush in flight that still writes the period (a
        retried event) commits before the check, and the next flushes register their
        players again. Bounded batches: flushes wait while a batch holds the epoch."""
        p = self._p
        listed = f"SELECT 1 FROM player_periods WHERE board = {p} AND period = {p} LIMIT 1"  # noqa: S608
        unused = (
            f"board = {p} AND period = {p} AND NOT EXISTS (SELECT 1 FROM {HOT} e "  # noqa: S608
            f"WHERE e.board = {p} AND e.period = {p} AND e.username = player_periods.username)"
        )
        if self._sqlite:
            # SQLite's DELETE takes no LIMIT unless built with it: the keys by a subquery.
            delete = (
                "DELETE FROM player_periods WHERE (username, board, period) IN ("  # noqa: S608
                f"SELECT username, board, period FROM player_periods WHERE {unused} "
                f"LIMIT {int(rows)})"
            )
        else:
            delete = f"DELETE FROM player_periods WHERE {unused} LIMIT {int(rows)}"  # noqa: S608

        async def transaction(connection: Any) -> int:
            # Nothing listed: no bump (it would empty every instance's cache for nothing).
            if not await self._dialect.fetch(connection, listed, (board, period)):
                return 0
            async with self._transaction(connection):
                await self._dialect.execute(connection, EPOCH_BUMP)
                if self._sqlite:
                    cursor = await connection.execute(delete, (board, period) * 2)
                    return int(cursor.rowcount)
                async with connection.cursor() as cursor:
                    return int(await cursor.execute(delete, (board, period) * 2))

        forgotten: int = await self._run("archive_forget_players", transaction)
        return forgotten

    async def compact(self) -> bool:
        """Rebuild `score_events` in place, online, so its B-trees hold only the rows that
        are left (docs/history.md, "After a big archive"); True when it ran.

        MySQL/MariaDB: `ALTER TABLE … FORCE, ALGORITHM=INPLACE, LOCK=NONE` (what `OPTIMIZE
        TABLE` does on InnoDB, but refused rather than blocking writes if the server cannot
        do it online); appends go on while it copies. SQLite: not run (False): `VACUUM`
        would rewrite the whole file, archive included, holding the write lock, and
        SQLite reuses the freed pages anyway."""
        if self._sqlite:
            return False
        statement = f"ALTER TABLE {HOT} FORCE, ALGORITHM=INPLACE, LOCK=NONE"

        async def rebuild(connection: Any) -> bool:
            # The ALTER takes the table's metadata lock briefly at its start and end; while
            # it waits for that lock, every new append queues behind it. A short wait (the
            # server's default is a day) makes a long transaction fail the rebuild instead
            # of stalling the writers.
            await self._dialect.execute(connection, "SET SESSION lock_wait_timeout = 10", ())
            try:
                await self._dialect.execute(connection, statement, ())
            finally:
                await self._dialect.execute(
                    connection, "SET SESSION lock_wait_timeout = DEFAULT", ()
                )
            return True

        done: bool = await self._patient("archive_compact", rebuild)
        return done

    def _transaction(self, connection: Any) -> contextlib.AbstractAsyncContextManager[None]:
        return write_transaction(self._dialect, connection, sqlite=self._sqlite)
