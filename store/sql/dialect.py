"""What differs between the databases the history runs on, as one interface.

Every statement runs on the driver connection under `databases`
(`Connection.raw_connection`): a ready multi-row INSERT sent straight through the
driver is by far the fastest way to store a batch (docs/history.md has the
measurements), and the reads need no query builder either.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol

import aiomysql
from databases import Database

from store.models import ScoreEvent

if TYPE_CHECKING:
    from store.sql.registry import PlayerRegistry

Row = tuple[Any, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Migration:
    """One schema version: the statements that reach it, on each database."""

    version: int
    mysql: tuple[str, ...]
    sqlite: tuple[str, ...]


EVENT_COLUMNS: Final = (
    "board, period, username, delta, event_id, client_event_id, created_at_ms, applied_at_us, "
    "presence, id_life, writer_id, writer_sequence"
)
"""The columns of one stored event, in `event_row` order."""
COLUMN_COUNT: Final = 12

DRIVER_ERRORS: Final = (aiomysql.MySQLError, sqlite3.Error, OSError, EOFError)
"""Errors that mean "the database did not do it"; anything else is a bug and propagates."""


WRITER_COLUMNS: Final = "board, period, writer_id, sequence"
"""The columns of one `writer_sequences` row, in `writer_rows` order."""
WRITER_COLUMN_COUNT: Final = 4


def writer_rows(events: Iterable[ScoreEvent]) -> list[Row]:
    """Each (board, period, writer id, highest sequence) the events carry, in key order
    (so concurrent flushes lock the rows they share in one order); none without a writer."""
    highest: dict[tuple[str, str, str], int] = {}
    for event in events:
        if event.writer_id is None or event.sequence is None:
            continue
        key = (event.board, event.period, event.writer_id)
        known = highest.get(key)
        if known is None or event.sequence > known:
            highest[key] = event.sequence
    return [(*key, highest[key]) for key in sorted(highest)]


def event_row(event: ScoreEvent) -> Row:
    """The column values of an event, in `EVENT_COLUMNS` order."""
    return (
        event.board,
        event.period,
        event.username,
        event.delta,
        event.event_id,
        event.client_event_id,
        event.created_at_ms,
        event.applied_at_us,
        event.presence,
        event.id_life,
        event.writer_id,
        event.sequence,
    )


class Dialect(Protocol):
    """One database's way of connecting, running statements, inserting and migrating.

    Duplicates are skipped by an upsert that changes nothing (`ON DUPLICATE KEY UPDATE
    id = id`, `ON CONFLICT ... DO NOTHING`) rather than `INSERT IGNORE` / `INSERT OR
    IGNORE`: those would also turn real data errors (a value too long, a NULL) into
    silent truncation, and on MySQL every skipped row would come back as a warning.
    """

    @property
    def placeholder(self) -> str:
        """The driver's parameter marker (`%s` or `?`)."""
        ...

    def database(self, url: str, *, min_size: int, timeout: float) -> Database:
        """A `databases` pool for `url`, not yet connected."""
        ...

    async def fetch(
        self, connection: Any, statement: str, parameters: Sequence[Any] = ()
    ) -> list[Row]:
        """Run a statement on a driver connection and return its rows."""
        ...

    async def execute(
        self, connection: Any, statement: str, parameters: Sequence[Any] = ()
    ) -> None:
        """Run a statement on a driver connection."""
        ...

    async def changing(self, connection: Any, statement: str, parameters: Sequence[Any]) -> int:
        """Run one changing statement, committed on its own; the number of rows it changed
        (MySQL counts a row it matched but left as it was only with CLIENT.FOUND_ROWS)."""
        ...

    async def insert(
        self, connection: Any, rows: list[Row], writers: list[Row], registry: PlayerRegistry
    ) -> None:
        """Insert event rows (`EVENT_COLUMNS`), skipping those already stored, and raise
        each writer's sequence (`writer_rows`) to at least its row's, never lowering it:
        one multi-row upsert of `writer_sequences` in the same transaction, none when
        `writers` is empty. The same transaction first reads the epoch (share-locked) and
        registers the rows' players `registry` has not seen registered at that epoch
        (store/sql/registry.py); the cache learns them after the commit."""
        ...

    def migration_lock(self, connection: Any) -> AbstractAsyncContextManager[None]:
        """Hold off every other process's migration while the steps run."""
        ...

    def steps(self, migration: Migration) -> tuple[str, ...]:
        """This database's statements of a migration."""
        ...

    async def record_version(self, connection: Any, version: int) -> None:
        """Store that the schema has reached `version` (never lowering it)."""
        ...


async def periods_in(dialect: Dialect, connection: Any, table: str, board: str) -> list[str]:
    """Every period of `board` with rows in `table`, oldest first: a skip scan, one index
    seek per period on the table's (board, period, ...) key. `SELECT DISTINCT period`
    read every row of the board instead (MariaDB chose no loose index scan): over 10 s
    with 5M events of one period, measured by the seasons benchmark."""
    p = dialect.placeholder
    first = f"SELECT MIN(period) FROM {table} WHERE board = {p}"  # noqa: S608
    following = (
        f"SELECT period FROM {table} WHERE board = {p} AND period > {p} "  # noqa: S608
        "ORDER BY period LIMIT 1"
    )
    rows = await dialect.fetch(connection, first, (board,))
    found: list[str] = []
    while rows and rows[0][0] is not None:
        found.append(str(rows[0][0]))
        rows = await dialect.fetch(connection, following, (board, found[-1]))
    return found


@contextlib.asynccontextmanager
async def write_transaction(
    dialect: Dialect, connection: Any, *, sqlite: bool
) -> AsyncIterator[None]:
    """One transaction for a multi-statement change, rolled back when the block raises.

    SQLite: BEGIN IMMEDIATE (the write lock at once, not at the first write). MySQL: READ
    COMMITTED, so a locking read takes the rows it picks only (no gap locks) and a plain
    SELECT is a consistent read that locks nothing: inserts into the next period never
    wait for a long freeze or an archive batch.
    """
    if sqlite:
        await connection.execute("BEGIN IMMEDIATE")
    else:
        await dialect.execute(connection, "SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
        await connection.begin()
    try:
        yield
    except BaseException:
        with contextlib.suppress(sqlite3.Error, aiomysql.Error):
            if sqlite:
                await connection.execute("ROLLBACK")
            else:
                await connection.rollback()
        raise
    if sqlite:
        await connection.execute("COMMIT")
    else:
        await connection.commit()
