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

Read replica (MySQL/MariaDB only, `read_url`): the two reads, `totals` and
`client_events`, serve rebuilds and reconciles only, and a rebuild from a replica that
lags would silently drop acknowledged increments from the live ranking. So each read
first asks the primary for its GTID position (MariaDB `@@gtid_binlog_pos`, MySQL
`@@gtid_executed`) and waits on the replica until it has applied that position
(`MASTER_GTID_WAIT` / `WAIT_FOR_EXECUTED_GTID_SET`), for at most `replica_wait_seconds`.
Only then does the read run on the replica: it sees at least everything committed
before the read began, as a read on the primary would. When the replica cannot confirm
(it lags, is down, GTIDs are off) the read runs on the primary, a warning is logged, and
the replica is left alone for `replica_retry_seconds`, so a lagging replica costs one
bounded wait per interval rather than one per read. Everything else (writes, migrations,
`ping`) uses the primary only; the replica pool opens no connection up front, so a replica
that is down never stops the service from starting or writing.

This lives in `SqlScoreHistory` rather than in a wrapper around two histories because
the catch-up check runs statements on both servers' driver connections, with the same
timeouts, error wrapping and metrics (`_run`) as every other statement; the
`ScoreHistory` protocol and its callers stay unchanged, and SQLite has no replica.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
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

EVENT_COLUMNS: Final = "board, period, username, delta, event_id, client_event_id, created_at_ms"
"""The columns of one stored event, in `event_row` order."""
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

REPLICA_WAIT_SECONDS: Final = 5.0
"""How long a read waits for the replica to catch up with the primary before using the primary."""
REPLICA_RETRY_SECONDS: Final = 30.0
"""How long reads skip a replica that could not confirm it had caught up."""
# Time beyond the server-side catch-up wait for connecting and the round trips around it.
_REPLICA_SLACK_SECONDS: Final = 1.0

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


def event_row(event: ScoreEvent) -> tuple[Any, ...]:
    """The column values of an event, in `EVENT_COLUMNS` order."""
    return (
        event.board,
        event.period,
        event.username,
        event.delta,
        event.event_id,
        event.client_event_id,
        event.created_at_ms,
    )


def _scheme(url: str) -> str:
    return url.partition("://")[0].lower()


class SqlScoreHistory:
    """`ScoreHistory` on MySQL/MariaDB or SQLite, chosen by the URL scheme.

    `timeout` bounds every operation (connecting included): a database that hangs
    counts as unavailable instead of stalling the write batcher for ever. `observer`
    is told the time of every operation (waiting for a pooled connection included).
    `read_url` names a MySQL/MariaDB replica of `url` for the reads (see the module
    docstring); empty or equal to `url`: no replica.
    """

    def __init__(
        self,
        url: str,
        *,
        read_url: str = "",
        timeout: float = 10.0,
        observer: StoreObserver | None = None,
        replica_wait_seconds: float = REPLICA_WAIT_SECONDS,
        replica_retry_seconds: float = REPLICA_RETRY_SECONDS,
    ) -> None:
        scheme = _scheme(url)
        if scheme in MYSQL_SCHEMES:
            self._mysql = True
        elif scheme in SQLITE_SCHEMES:
            self._mysql = False
        else:
            raise ValueError(
                f"unsupported history URL scheme {scheme!r}: "
                "use mysql+aiomysql://user:password@host:3306/name or sqlite+aiosqlite:///path"
            )
        if read_url == url:
            read_url = ""
        if read_url and not (self._mysql and _scheme(read_url) in MYSQL_SCHEMES):
            raise ValueError(
                "a read replica needs a MySQL/MariaDB history and a mysql+aiomysql:// read URL"
            )
        self._url = url
        self._read_url = read_url
        self._timeout = timeout
        self._observer = observer
        self._database: Database | None = None
        self._replica: Database | None = None
        self._replica_wait_seconds = replica_wait_seconds
        self._replica_retry_seconds = replica_retry_seconds
        self._replica_limit = replica_wait_seconds + _REPLICA_SLACK_SECONDS
        self._replica_skipped_until = 0.0
        self._replica_problem = ""
        self._primary_is_mariadb: bool | None = None
        self._max_statement_bytes: int | None = None
        self._sqlite_rows_per_statement = max(1, _sqlite_variable_limit() // _COLUMN_COUNT)

    @property
    def dialect(self) -> str:
        """`mysql` or `sqlite`."""
        return "mysql" if self._mysql else "sqlite"

    # Lifecycle

    async def connect(self) -> None:
        """Open the connection pool (MySQL: one connection at once, to fail early).

        The replica's pool opens connections only when a read needs one; it is pinged
        once here so that an unreachable replica is reported (and skipped) at start.
        """
        if self._database is not None:
            return
        if self._mysql:
            database = self._mysql_database(self._url, min_size=1, timeout=self._timeout)
        else:
            database = Database(self._url, timeout=self._timeout)
        try:
            async with asyncio.timeout(self._timeout):
                await database.connect()
        except (*_DRIVER_ERRORS, TimeoutError) as error:
            raise StoreUnavailable(f"history database unreachable: {error}") from error
        self._database = database
        if self._read_url:
            # minsize 0: connects nothing, so it cannot fail on a replica that is down.
            replica = self._mysql_database(self._read_url, min_size=0, timeout=self._replica_limit)
            await replica.connect()
            self._replica = replica
            try:
                await self._run("ping", self._select_one, limit=self._replica_limit, replica=True)
            except StoreUnavailable as error:
                self._skip_replica(str(error))

    @staticmethod
    def _mysql_database(url: str, *, min_size: int, timeout: float) -> Database:
        return Database(
            url,
            min_size=min_size,
            max_size=10,
            charset="utf8mb4",
            connect_timeout=max(1, math.ceil(timeout)),
            pool_recycle=3600,
            # Strict: a value that does not fit is an error, never silently truncated.
            sql_mode="'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'",  # aiomysql sends it unquoted
        )

    async def close(self) -> None:
        """Close the connection pools; safe when not connected."""
        database, self._database = self._database, None
        replica, self._replica = self._replica, None
        for pool in (database, replica):
            if pool is None:
                continue
            try:
                async with asyncio.timeout(self._timeout):
                    await pool.disconnect()
            except (*_DRIVER_ERRORS, TimeoutError) as error:
                logger.warning("closing the history connections failed: %s", error)

    async def ping(self) -> None:
        """Raise `StoreUnavailable` unless the database (the primary) answers."""
        await self._run("ping", self._select_one, limit=self._timeout)

    async def replica_status(self) -> str | None:
        """The read replica's state for a readiness report; None when there is none.

        Informational: the service reads from the primary whenever the replica cannot
        be used, so this never makes the process unready.
        """
        if not self._read_url:
            return None
        if self._replica is None:
            return "not connected"
        try:
            await self._run("ping", self._select_one, limit=self._replica_limit, replica=True)
        except StoreUnavailable as error:
            return f"unavailable: {error}"
        skipped_for = self._replica_skipped_until - time.monotonic()
        if skipped_for > 0:
            return (
                f"skipped for {skipped_for:.0f} s, reads use the primary: {self._replica_problem}"
            )
        return "ok"

    async def _select_one(self, connection: Any) -> None:
        await self._fetch(connection, "SELECT 1", ())

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
            "migrate", self._migrate_mysql if self._mysql else self._migrate_sqlite, limit=None
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
        rows = [event_row(event) for event in events]
        await self._run(
            "append", lambda connection: self._append(connection, rows), limit=self._timeout
        )

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
            f"INSERT INTO score_events ({EVENT_COLUMNS}) VALUES {values} "  # noqa: S608
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
            f"INSERT INTO score_events ({EVENT_COLUMNS}) VALUES {values} "  # noqa: S608
            "ON CONFLICT (board, period, event_id) DO NOTHING"
        )
        await connection.execute(statement, [value for row in rows for value in row])

    # Reads

    async def totals(self, board: str, period: str) -> list[tuple[str, int]]:
        """Every player's summed delta in the period (an index-only scan).

        On the replica when it has caught up with the primary, else on the primary.
        """
        statement = _TOTALS.format(p=self._placeholder)

        async def query(connection: Any) -> list[tuple[str, int]]:
            rows = await self._fetch(connection, statement, (board, period))
            return [(str(username), int(total)) for username, total in rows]

        return await self._read("totals", query)

    async def client_events(self, board: str, period: str) -> list[tuple[str, str]]:
        """(username, event id) of each client-supplied event id stored for the period.

        On the replica when it has caught up with the primary, else on the primary.
        """
        statement = _CLIENT_EVENTS.format(p=self._placeholder)

        async def query(connection: Any) -> list[tuple[str, str]]:
            rows = await self._fetch(connection, statement, (board, period))
            return [(str(username), str(event_id)) for username, event_id in rows]

        return await self._read("client_events", query)

    # Read replica

    async def _read(self, what: str, operation: Callable[[Any], Awaitable[T]]) -> T:
        """Run a read on the replica if it has caught up with the primary, else on the primary."""
        if await self._replica_caught_up():
            try:
                return await self._run(what, operation, limit=self._timeout, replica=True)
            except StoreUnavailable as error:
                self._skip_replica(str(error))
        return await self._run(what, operation, limit=self._timeout)

    async def _replica_caught_up(self) -> bool:
        """Whether the replica has applied everything the primary had committed just now."""
        if self._replica is None or time.monotonic() < self._replica_skipped_until:
            return False
        try:
            position = await self._run("gtid_position", self._gtid_position, limit=self._timeout)
        except StoreUnavailable:
            # The primary is failing: the read on it reports that, not the replica.
            return False
        if position is None:
            self._skip_replica(
                "GTIDs are off on the primary (MariaDB: log_bin; MySQL: gtid_mode = ON), "
                "so the replica's lag cannot be checked"
            )
            return False
        try:
            reached = await self._run(
                "catch_up",
                lambda connection: self._wait_for_position(connection, position),
                limit=self._replica_limit,
                replica=True,
            )
        except StoreUnavailable as error:
            self._skip_replica(str(error))
            return False
        if not reached:
            self._skip_replica(
                f"it did not reach the primary's GTID position {position!r} "
                f"within {self._replica_wait_seconds} s"
            )
        return reached

    async def _gtid_position(self, connection: Any) -> str | None:
        """The primary's GTID position; None when it keeps none (the lag is unknowable)."""
        if self._primary_is_mariadb is None:
            ((version,),) = await self._fetch(connection, "SELECT VERSION()", ())
            self._primary_is_mariadb = "mariadb" in str(version).lower()
        if self._primary_is_mariadb:
            statement = "SELECT @@GLOBAL.log_bin, @@GLOBAL.gtid_binlog_pos"
        else:
            statement = "SELECT @@GLOBAL.gtid_mode = 'ON', @@GLOBAL.gtid_executed"
        ((enabled, position),) = await self._fetch(connection, statement, ())
        return str(position) if enabled else None

    async def _wait_for_position(self, connection: Any, position: str) -> bool:
        """Wait on the replica, server side, until it has applied `position`."""
        if self._primary_is_mariadb:
            # Fractional seconds; 0 once gtid_slave_pos has reached it, -1 on timeout.
            statement = "SELECT MASTER_GTID_WAIT(%s, %s)"
            wait: float = self._replica_wait_seconds
        else:
            # Whole seconds; 0 once gtid_executed contains it, 1 on timeout.
            statement = "SELECT WAIT_FOR_EXECUTED_GTID_SET(%s, %s)"
            wait = max(1, math.ceil(self._replica_wait_seconds))
        rows = await self._fetch(connection, statement, (position, wait))
        return bool(rows) and rows[0][0] == 0

    def _skip_replica(self, problem: str) -> None:
        self._replica_skipped_until = time.monotonic() + self._replica_retry_seconds
        self._replica_problem = problem
        logger.warning(
            "history reads use the primary for the next %.0f s, not the read replica: %s",
            self._replica_retry_seconds,
            problem,
        )

    # Plumbing

    @property
    def _placeholder(self) -> str:
        return "%s" if self._mysql else "?"

    async def _run(
        self,
        what: str,
        operation: Callable[[Any], Awaitable[T]],
        *,
        limit: float | None,
        replica: bool = False,
    ) -> T:
        """Run `operation` on a driver connection (of the primary, or the replica) within
        `limit` seconds (None: no limit), errors wrapped."""
        store = "history-replica" if replica else "history"
        database = self._replica if replica else self._database
        if database is None:
            raise StoreUnavailable(f"{store} {what}: not connected")
        started = time.perf_counter()
        try:
            async with asyncio.timeout(limit):
                async with database.connection() as connection:
                    result = await operation(connection.raw_connection)
        except TimeoutError as error:
            self._observe(store, what, started, failed=True)
            raise StoreUnavailable(f"{store} {what}: no answer within {limit} s") from error
        except _DRIVER_ERRORS as error:
            self._observe(store, what, started, failed=True)
            raise StoreUnavailable(f"{store} {what} failed: {error}") from error
        self._observe(store, what, started, failed=False)
        return result

    def _observe(self, store: str, what: str, started: float, *, failed: bool) -> None:
        if self._observer is not None:
            self._observer.observe_store(store, what, time.perf_counter() - started, failed=failed)

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
