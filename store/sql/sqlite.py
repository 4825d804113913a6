"""The SQLite dialect (aiosqlite): WAL, chunks of the parameter limit in one transaction."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, Final

from databases import Database

from store.errors import StoreUnavailable
from store.sql.dialect import (
    COLUMN_COUNT,
    EVENT_COLUMNS,
    WRITER_COLUMN_COUNT,
    WRITER_COLUMNS,
    Migration,
    Row,
)
from store.sql.registry import (
    EPOCH_READ,
    PLAYER_COLUMN_COUNT,
    PLAYER_COLUMNS,
    PlayerRegistry,
)

SCHEMES: Final = frozenset({"sqlite", "sqlite+aiosqlite"})


def _variable_limit() -> int:
    """The most `?` parameters one SQLite statement may hold in this build."""
    probe = sqlite3.connect(":memory:")
    try:
        return probe.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    finally:
        probe.close()


async def _rollback(connection: Any) -> None:
    # The connection may be gone; the transaction dies with it then.
    with contextlib.suppress(sqlite3.Error, ValueError):
        await connection.execute("ROLLBACK")


@asynccontextmanager
async def _immediate_transaction(connection: Any) -> AsyncIterator[None]:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception (cancellation included)."""
    await connection.execute("BEGIN IMMEDIATE")
    try:
        yield
        await connection.execute("COMMIT")
    except BaseException:
        await _rollback(connection)
        raise


class SqliteDialect:
    """`Dialect` of SQLite: `?` parameters, statements on the connection itself.

    `databases` opens a connection per operation. `timeout` bounds the wait for WAL mode.
    """

    placeholder: Final = "?"

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        limit = _variable_limit()
        self._rows_per_statement = max(1, limit // COLUMN_COUNT)
        self._writers_per_statement = max(1, limit // WRITER_COLUMN_COUNT)
        self._players_per_statement = max(1, limit // PLAYER_COLUMN_COUNT)

    def database(self, url: str, *, min_size: int, timeout: float) -> Database:
        """A `databases` handle of the file (SQLite has no pool to size)."""
        return Database(url, timeout=timeout)

    async def fetch(
        self, connection: Any, statement: str, parameters: Sequence[Any] = ()
    ) -> list[Row]:
        """Run a statement and return its rows."""
        async with connection.execute(statement, parameters) as cursor:
            return list(await cursor.fetchall())

    async def execute(
        self, connection: Any, statement: str, parameters: Sequence[Any] = ()
    ) -> None:
        """Run a statement."""
        await connection.execute(statement, parameters)

    async def changing(self, connection: Any, statement: str, parameters: Sequence[Any]) -> int:
        """Run one changing statement in an IMMEDIATE transaction; the rows it changed."""
        async with _immediate_transaction(connection):
            cursor = await connection.execute(statement, parameters)
        return int(cursor.rowcount)

    async def insert(
        self, connection: Any, rows: list[Row], writers: list[Row], registry: PlayerRegistry
    ) -> None:
        """One IMMEDIATE transaction (which excludes every other writer, erasure included):
        the epoch, the players `registry` has not seen registered (`player_periods`), one
        INSERT per parameter limit's worth of rows and, with `writers`, the upsert of
        `writer_sequences`. The cache learns the players after the commit."""
        size = self._rows_per_statement
        chunks = [rows[start : start + size] for start in range(0, len(rows), size)]
        async with _immediate_transaction(connection):
            async with connection.execute(EPOCH_READ) as cursor:
                found = await cursor.fetchone()
            epoch = None if found is None else int(found[0])
            players = registry.unregistered(epoch, rows)
            step = self._players_per_statement
            for start in range(0, len(players), step):
                await self._upsert_players(connection, players[start : start + step])
            for chunk in chunks:
                await self._insert(connection, chunk)
            # A writer row is 4 parameters to an event row's 12: a flush's writers fit in
            # one statement whenever its events do in one.
            size = self._writers_per_statement
            for start in range(0, len(writers), size):
                await self._upsert_writers(connection, writers[start : start + size])
        registry.registered(epoch, players)

    @staticmethod
    async def _upsert_players(connection: Any, rows: list[Row]) -> None:
        await _insert_rows(
            connection, "player_periods", PLAYER_COLUMNS, rows, "(username, board, period)"
        )

    @staticmethod
    async def _insert(connection: Any, rows: list[Row]) -> None:
        await _insert_rows(
            connection, "score_events", EVENT_COLUMNS, rows, "(board, period, event_id, id_life)"
        )

    @staticmethod
    async def _upsert_writers(connection: Any, rows: list[Row]) -> None:
        # Never lowers a sequence: a retried flush (or an older one landing late) changes
        # nothing.
        await _insert_rows(
            connection,
            "writer_sequences",
            WRITER_COLUMNS,
            rows,
            "(board, period, writer_id) DO UPDATE SET sequence = max(sequence, excluded.sequence)",
        )

    @asynccontextmanager
    async def migration_lock(self, connection: Any) -> AsyncIterator[None]:
        """WAL mode, then one IMMEDIATE transaction (SQLite DDL is transactional)."""
        await self._enable_wal(connection)
        async with _immediate_transaction(connection):
            yield

    async def _enable_wal(self, connection: Any) -> None:
        """WAL: readers never block the writer; the mode is stored in the file.

        Switching needs the file to itself and SQLite does not wait for that (no busy
        handler), so while other connections (other processes migrating) use it, retry.
        """
        deadline = asyncio.get_running_loop().time() + self._timeout
        while True:
            try:
                rows = await self.fetch(connection, "PRAGMA journal_mode = WAL")
            except sqlite3.OperationalError:
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.02)
                continue
            if rows and str(rows[0][0]).lower() == "wal":
                return
            raise StoreUnavailable(f"SQLite refused WAL mode (journal mode {rows})")

    def steps(self, migration: Migration) -> tuple[str, ...]:
        """The SQLite statements of a migration."""
        return migration.sqlite

    async def record_version(self, connection: Any, version: int) -> None:
        """Upsert the version, never lowering it."""
        await connection.execute(
            "INSERT INTO schema_version (id, version) VALUES (1, ?) "
            "ON CONFLICT (id) DO UPDATE SET version = max(version, excluded.version)",
            (version,),
        )


async def _insert_rows(
    connection: Any, table: str, columns: str, rows: list[Row], conflict: str
) -> None:
    """One multi-row INSERT of `rows` into `table`, `ON CONFLICT <conflict>` (a bare key
    means DO NOTHING). Only placeholders are spliced in; the values are bound parameters."""
    marks = "(" + ",".join("?" * len(rows[0])) + ")"
    action = conflict if " DO " in conflict else conflict + " DO NOTHING"
    statement = (
        f"INSERT INTO {table} ({columns}) VALUES {','.join((marks,) * len(rows))} "  # noqa: S608
        f"ON CONFLICT {action}"
    )
    await connection.execute(statement, [value for row in rows for value in row])
