"""The score history on MySQL/MariaDB (aiomysql) or SQLite (aiosqlite), through `databases`.

The URL scheme picks the database: `mysql+aiomysql://user@host:3306/name` or
`sqlite+aiosqlite:///path/to/file.db`. `databases` owns the connection pool (MySQL)
or opens a connection per operation (SQLite); every statement runs on the driver
connection underneath (`Connection.raw_connection`), because a ready multi-row INSERT
sent straight through the driver is by far the fastest way to store a batch (see
docs/history.md for the measurements), and reads need no query builder either.

Duplicates are skipped with `ON DUPLICATE KEY UPDATE id = id` (MySQL) and
`ON CONFLICT (board, period, event_id) DO NOTHING` (SQLite) rather than
`INSERT IGNORE` / `INSERT OR IGNORE`: those would also turn real data errors (a value
too long, a NULL) into silent truncation, and on MySQL every skipped row would come
back as a warning that aiomysql re-fetches and re-raises as a Python warning.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final, TypeVar

import aiomysql
from databases import Database

from store.errors import StoreUnavailable
from store.models import ScoreEvent
from store.observer import StoreObserver

logger = logging.getLogger(__name__)

T = TypeVar("T")

MYSQL_SCHEMES: Final = frozenset({"mysql", "mysql+aiomysql"})
SQLITE_SCHEMES: Final = frozenset({"sqlite", "sqlite+aiosqlite"})

_COLUMNS: Final = "board, period, username, delta, event_id, client_event_id, created_at_ms"
_COLUMN_COUNT: Final = 7

# Errors that mean "the database did not do it"; anything else is a bug and propagates.
_DRIVER_ERRORS: Final = (aiomysql.MySQLError, sqlite3.Error, OSError, EOFError)

# Migrations: (version, MySQL statements, SQLite statements), applied in order, each once.
# Never edit a released step: add a new version instead.
_MYSQL_V1: Final = (
    """
    CREATE TABLE IF NOT EXISTS score_events (
        id BIGINT NOT NULL AUTO_INCREMENT,
        board VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
        period VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
        username VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
        delta BIGINT NOT NULL,
        event_id VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
        client_event_id BOOL NOT NULL,
        created_at_ms BIGINT NOT NULL,
        PRIMARY KEY (id),
        UNIQUE KEY score_events_event (board, period, event_id),
        KEY score_events_totals (board, period, username, delta)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin
    """,
)
_SQLITE_V1: Final = (
    """
    CREATE TABLE IF NOT EXISTS score_events (
        id INTEGER PRIMARY KEY,
        board TEXT NOT NULL,
        period TEXT NOT NULL,
        username TEXT NOT NULL,
        delta INTEGER NOT NULL,
        event_id TEXT NOT NULL,
        client_event_id INTEGER NOT NULL,
        created_at_ms INTEGER NOT NULL,
        CONSTRAINT score_events_event UNIQUE (board, period, event_id)
    )
    """,
    """
    CREATE INDEX IF NOT EXISTS score_events_totals
        ON score_events (board, period, username, delta)
    """,
)
MIGRATIONS: Final[tuple[tuple[int, tuple[str, ...], tuple[str, ...]], ...]] = (
    (1, _MYSQL_V1, _SQLITE_V1),
)
SCHEMA_VERSION: Final = MIGRATIONS[-1][0]

_MYSQL_SCHEMA_VERSION_TABLE: Final = """
    CREATE TABLE IF NOT EXISTS schema_version (
        id TINYINT NOT NULL PRIMARY KEY,
        version INT NOT NULL
    ) ENGINE=InnoDB
"""
_SQLITE_SCHEMA_VERSION_TABLE: Final = """
    CREATE TABLE IF NOT EXISTS schema_version (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        version INTEGER NOT NULL
    )
"""

_MIGRATION_LOCK_SECONDS: Final = 60

_TOTALS: Final = (
    "SELECT username, SUM(delta) FROM score_events "
    "WHERE board = {p} AND period = {p} GROUP BY username"
)
_CLIENT_EVENTS: Final = (
    "SELECT username, event_id FROM score_events "
    "WHERE board = {p} AND period = {p} AND client_event_id"
)


def _sqlite_variable_limit() -> int:
    """The most `?` parameters one SQLite statement may hold in this build."""
    probe = sqlite3.connect(":memory:")
    try:
        return probe.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    finally:
        probe.close()


async def _rollback_sqlite(connection: Any) -> None:
    # The connection may be gone; the transaction dies with it then.
    with contextlib.suppress(sqlite3.Error, ValueError):
        await connection.execute("ROLLBACK")


def _row(event: ScoreEvent) -> tuple[Any, ...]:
    return (
        event.board,
        event.period,
        event.username,
        event.delta,
        event.event_id,
        event.client_event_id,
        event.created_at_ms,
    )


class SqlScoreHistory:
    """`ScoreHistory` on MySQL/MariaDB or SQLite, chosen by the URL scheme.

    `timeout` bounds every operation (connecting included): a database that hangs
    counts as unavailable instead of stalling the write batcher for ever. `observer`
    is told the time of every operation (waiting for a pooled connection included).
    """

    def __init__(
        self, url: str, *, timeout: float = 10.0, observer: StoreObserver | None = None
    ) -> None:
        scheme = url.partition("://")[0].lower()
        if scheme in MYSQL_SCHEMES:
            self._mysql = True
        elif scheme in SQLITE_SCHEMES:
            self._mysql = False
        else:
            raise ValueError(
                f"unsupported history URL scheme {scheme!r}: "
                "use mysql+aiomysql://user:password@host:3306/name or sqlite+aiosqlite:///path"
            )
        self._url = url
        self._timeout = timeout
        self._observer = observer
        self._database: Database | None = None
        self._max_statement_bytes: int | None = None
        self._sqlite_rows_per_statement = max(1, _sqlite_variable_limit() // _COLUMN_COUNT)

    @property
    def dialect(self) -> str:
        """`mysql` or `sqlite`."""
        return "mysql" if self._mysql else "sqlite"

    # Lifecycle

    async def connect(self) -> None:
        """Open the connection pool (MySQL: one connection at once, to fail early)."""
        if self._database is not None:
            return
        if self._mysql:
            database = Database(
                self._url,
                min_size=1,
                max_size=10,
                charset="utf8mb4",
                connect_timeout=max(1, round(self._timeout)),
                pool_recycle=3600,
                # Strict: a value that does not fit is an error, never silently truncated.
                sql_mode="'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'",  # aiomysql sends it unquoted
            )
        else:
            database = Database(self._url, timeout=self._timeout)
        try:
            async with asyncio.timeout(self._timeout):
                await database.connect()
        except (*_DRIVER_ERRORS, TimeoutError) as error:
            raise StoreUnavailable(f"history database unreachable: {error}") from error
        self._database = database

    async def close(self) -> None:
        """Close the connection pool; safe when not connected."""
        database, self._database = self._database, None
        if database is None:
            return
        try:
            async with asyncio.timeout(self._timeout):
                await database.disconnect()
        except (*_DRIVER_ERRORS, TimeoutError) as error:
            logger.warning("closing the history connections failed: %s", error)

    async def ping(self) -> None:
        """Raise `StoreUnavailable` unless the database answers."""

        async def select_one(connection: Any) -> None:
            await self._fetch(connection, "SELECT 1", ())

        await self._run("ping", select_one)

    # Schema

    async def migrate(self) -> None:
        """Create or upgrade the tables to `SCHEMA_VERSION`; idempotent and safe concurrently.

        MySQL: the steps run under a named lock (GET_LOCK) of this database, so
        concurrent processes apply each step once, one after the other. SQLite: the
        steps run in one IMMEDIATE transaction (SQLite DDL is transactional).
        """
        # No overall time limit: a later step may rebuild a big table. Waiting for
        # another process's migration is bounded by the lock wait instead.
        await self._run(
            "migrate", self._migrate_mysql if self._mysql else self._migrate_sqlite, bounded=False
        )

    async def _migrate_mysql(self, connection: Any) -> None:
        rows = await self._fetch(
            connection,
            "SELECT GET_LOCK(CONCAT('leaderboard-migrate:', LEFT(DATABASE(), 40)), %s)",
            (_MIGRATION_LOCK_SECONDS,),
        )
        if not rows or rows[0][0] != 1:
            raise StoreUnavailable("timed out waiting for another process's migration")
        try:
            # CREATE ... IF NOT EXISTS on an existing table leaves a note, which aiomysql
            # would re-raise as a Python warning; notes are off for the migration only.
            await self._execute(connection, "SET @lb_sql_notes = @@session.sql_notes")
            await self._execute(connection, "SET SESSION sql_notes = 0")
            try:
                await self._execute(connection, _MYSQL_SCHEMA_VERSION_TABLE)
                current = await self._schema_version(connection)
                for version, mysql_steps, _ in MIGRATIONS:
                    if version <= current:
                        continue
                    for statement in mysql_steps:
                        await self._execute(connection, statement)
                    await self._execute(
                        connection,
                        "INSERT INTO schema_version (id, version) VALUES (1, %s) "
                        "ON DUPLICATE KEY UPDATE version = GREATEST(version, %s)",
                        (version, version),
                    )
                    logger.info("history schema migrated to version %d", version)
            finally:
                await self._execute(connection, "SET SESSION sql_notes = @lb_sql_notes")
        finally:
            await self._execute(
                connection,
                "DO RELEASE_LOCK(CONCAT('leaderboard-migrate:', LEFT(DATABASE(), 40)))",
            )

    async def _migrate_sqlite(self, connection: Any) -> None:
        await self._enable_wal(connection)
        await connection.execute("BEGIN IMMEDIATE")
        try:
            await connection.execute(_SQLITE_SCHEMA_VERSION_TABLE)
            current = await self._schema_version(connection)
            for version, _, sqlite_steps in MIGRATIONS:
                if version <= current:
                    continue
                for statement in sqlite_steps:
                    await connection.execute(statement)
                await connection.execute(
                    "INSERT INTO schema_version (id, version) VALUES (1, ?) "
                    "ON CONFLICT (id) DO UPDATE SET version = max(version, excluded.version)",
                    (version,),
                )
                logger.info("history schema migrated to version %d", version)
            await connection.execute("COMMIT")
        except BaseException:
            await _rollback_sqlite(connection)
            raise

    async def _enable_wal(self, connection: Any) -> None:
        """WAL: readers never block the writer; the mode is stored in the file.

        Switching needs the file to itself and SQLite does not wait for that (no busy
        handler), so while other connections (other processes migrating) use it, retry.
        """
        deadline = asyncio.get_running_loop().time() + self._timeout
        while True:
            try:
                rows = await self._fetch(connection, "PRAGMA journal_mode = WAL", ())
            except sqlite3.OperationalError:
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.02)
                continue
            if rows and str(rows[0][0]).lower() == "wal":
                return
            raise StoreUnavailable(f"SQLite refused WAL mode (journal mode {rows})")

    async def _schema_version(self, connection: Any) -> int:
        rows = await self._fetch(connection, "SELECT version FROM schema_version WHERE id = 1", ())
        return int(rows[0][0]) if rows else 0

    # Writes

    async def append(self, events: Sequence[ScoreEvent]) -> None:
        """Store events with one multi-row INSERT; events already stored are skipped.

        Split into several statements only where the database forces it: SQLite's
        limit on parameters per statement (in one transaction), MySQL's
        max_allowed_packet (each part is idempotent, so a retry after a partial
        write is safe).
        """
        if not events:
            return
        rows = [_row(event) for event in events]
        await self._run("append", lambda connection: self._append(connection, rows))

    async def _append(self, connection: Any, rows: list[tuple[Any, ...]]) -> None:
        if self._mysql:
            await self._append_mysql(connection, rows)
        else:
            await self._append_sqlite(connection, rows)

    async def _append_mysql(self, connection: Any, rows: list[tuple[Any, ...]]) -> None:
        if self._max_statement_bytes is None:
            packet = await self._fetch(connection, "SELECT @@max_allowed_packet", ())
            # Leave room for the packet header and the statement around the values.
            self._max_statement_bytes = int(packet[0][0]) - 1024
        async with connection.cursor() as cursor:
            await self._insert_mysql(cursor, rows, self._max_statement_bytes)

    async def _insert_mysql(self, cursor: Any, rows: list[tuple[Any, ...]], limit: int) -> None:
        values = ",".join(("(%s,%s,%s,%s,%s,%s,%s)",) * len(rows))
        # Only placeholders are spliced in; the values are escaped by the driver.
        template = (
            f"INSERT INTO score_events ({_COLUMNS}) VALUES {values} "  # noqa: S608
            "ON DUPLICATE KEY UPDATE id = id"
        )
        statement: str = cursor.mogrify(template, [value for row in rows for value in row])
        # A character takes at most 4 bytes: encode only when the text could be too big.
        if len(statement) * 4 > limit and len(statement.encode()) > limit and len(rows) > 1:
            half = len(rows) // 2
            await self._insert_mysql(cursor, rows[:half], limit)
            await self._insert_mysql(cursor, rows[half:], limit)
            return
        await cursor.execute(statement)

    async def _append_sqlite(self, connection: Any, rows: list[tuple[Any, ...]]) -> None:
        size = self._sqlite_rows_per_statement
        chunks = [rows[start : start + size] for start in range(0, len(rows), size)]
        if len(chunks) == 1:
            await self._insert_sqlite(connection, chunks[0])
            return
        await connection.execute("BEGIN IMMEDIATE")
        try:
            for chunk in chunks:
                await self._insert_sqlite(connection, chunk)
            await connection.execute("COMMIT")
        except BaseException:
            await _rollback_sqlite(connection)
            raise

    @staticmethod
    async def _insert_sqlite(connection: Any, rows: list[tuple[Any, ...]]) -> None:
        values = ",".join(("(?,?,?,?,?,?,?)",) * len(rows))
        # Only placeholders are spliced in; the values are bound parameters.
        statement = (
            f"INSERT INTO score_events ({_COLUMNS}) VALUES {values} "  # noqa: S608
            "ON CONFLICT (board, period, event_id) DO NOTHING"
        )
        await connection.execute(statement, [value for row in rows for value in row])

    # Reads

    async def totals(self, board: str, period: str) -> list[tuple[str, int]]:
        """Every player's summed delta in the period (an index-only scan)."""
        statement = _TOTALS.format(p=self._placeholder)

        async def query(connection: Any) -> list[tuple[str, int]]:
            rows = await self._fetch(connection, statement, (board, period))
            return [(str(username), int(total)) for username, total in rows]

        return await self._run("totals", query)

    async def client_events(self, board: str, period: str) -> list[tuple[str, str]]:
        """(username, event id) of each client-supplied event id stored for the period."""
        statement = _CLIENT_EVENTS.format(p=self._placeholder)

        async def query(connection: Any) -> list[tuple[str, str]]:
            rows = await self._fetch(connection, statement, (board, period))
            return [(str(username), str(event_id)) for username, event_id in rows]

        return await self._run("client_events", query)

    # Plumbing

    @property
    def _placeholder(self) -> str:
        return "%s" if self._mysql else "?"

    async def _run(
        self,
        what: str,
        operation: Callable[[Any], Awaitable[T]],
        *,
        bounded: bool = True,
    ) -> T:
        """Run `operation` on a driver connection, within the timeout, errors wrapped."""
        database = self._database
        if database is None:
            raise StoreUnavailable(f"history {what}: not connected")
        limit = self._timeout if bounded else None
        started = time.perf_counter()
        try:
            async with asyncio.timeout(limit):
                async with database.connection() as connection:
                    result = await operation(connection.raw_connection)
        except TimeoutError as error:
            self._observe(what, started, failed=True)
            raise StoreUnavailable(f"history {what}: no answer within {self._timeout} s") from error
        except _DRIVER_ERRORS as error:
            self._observe(what, started, failed=True)
            raise StoreUnavailable(f"history {what} failed: {error}") from error
        self._observe(what, started, failed=False)
        return result

    def _observe(self, what: str, started: float, *, failed: bool) -> None:
        if self._observer is not None:
            self._observer.observe_store(
                "history", what, time.perf_counter() - started, failed=failed
            )

    async def _fetch(
        self, connection: Any, statement: str, parameters: Sequence[Any]
    ) -> list[tuple[Any, ...]]:
        if self._mysql:
            async with connection.cursor() as cursor:
                await cursor.execute(statement, parameters or None)
                return list(await cursor.fetchall())
        async with connection.execute(statement, parameters) as cursor:
            return list(await cursor.fetchall())

    async def _execute(
        self, connection: Any, statement: str, parameters: Sequence[Any] = ()
    ) -> None:
        if self._mysql:
            async with connection.cursor() as cursor:
                await cursor.execute(statement, parameters or None)
        else:
            await connection.execute(statement, parameters)
