"""How fast can a batch of score events be inserted into MySQL/MariaDB? One run, every variant.

    .venv/bin/python benchmarks/history_insert.py [--rows 50000] [--batch 500]
        [--host 127.0.0.1] [--port 3306] [--user root] [--password ...] [--sqlite]

Creates a scratch database on the server (dropped afterwards) with the real
`score_events` table (via `SqlScoreHistory.migrate`), empties it before each variant,
and inserts `--rows` fresh events in batches of `--batch`, one batch at a time, the way
the write batcher does. Prints rows/s per variant. The variants:

- databases execute_many: what `Database.execute_many` does, one INSERT per row;
- SQLAlchemy Core insert().values([...]): one multi-row statement built and compiled by
  SQLAlchemy, executed through `databases`;
- aiomysql executemany: the driver rewrites the statement into one multi-row INSERT;
- ready multi-row statement: a `VALUES (%s,...),(%s,...)...` template filled by the
  driver's escaping in one `cursor.execute`;
- SqlScoreHistory.append: what the service runs (ready statement, pooled connection,
  timeout, error wrapping) - the chosen variant, end to end;
- WriteBatcher -> SqlScoreHistory: commits of 10 events as fast as one event loop can
  make them, flushed by the batcher (flush_max_events = --batch) until all are stored;
- WriteBatcher -> no-op history: the batcher's own cost per event, for comparison.

Every variant uses `ON DUPLICATE KEY UPDATE id = id`, like the service.
Results and the choice are recorded in docs/history.md.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import aiomysql
import sqlalchemy
from databases import Database
from sqlalchemy.dialects import mysql as mysql_dialect

from batcher import WriteBatcher
from store.models import ScoreEvent
from store.sql import EVENT_COLUMNS, SqlScoreHistory, event_row

COLUMNS = EVENT_COLUMNS.split(", ")
ROW = "(" + ",".join(["%s"] * len(COLUMNS)) + ")"
"""One row's placeholders, as many as the history's event columns."""
UPSERT = " ON DUPLICATE KEY UPDATE id = id"

TABLE = sqlalchemy.Table(
    "score_events",
    sqlalchemy.MetaData(),
    sqlalchemy.Column("id", sqlalchemy.BigInteger, primary_key=True),
    sqlalchemy.Column("board", sqlalchemy.String(64)),
    sqlalchemy.Column("period", sqlalchemy.String(16)),
    sqlalchemy.Column("username", sqlalchemy.String(64)),
    sqlalchemy.Column("delta", sqlalchemy.BigInteger),
    sqlalchemy.Column("event_id", sqlalchemy.String(128)),
    sqlalchemy.Column("client_event_id", sqlalchemy.Boolean),
    sqlalchemy.Column("created_at_ms", sqlalchemy.BigInteger),
    sqlalchemy.Column("applied_at_us", sqlalchemy.BigInteger),
    sqlalchemy.Column("presence", sqlalchemy.SmallInteger),
    sqlalchemy.Column("id_life", sqlalchemy.BigInteger),
)

Batch = list[ScoreEvent]
Variant = Callable[[Sequence[Batch]], Awaitable[None]]


def make_batches(rows: int, batch: int, tag: str) -> list[Batch]:
    """Fresh events (unique ids), a realistic spread of players, some non-ASCII names."""
    now_ms = int(time.time() * 1000)
    names = [f"player{number}" if number % 10 else f"jügador{number}" for number in range(10_000)]
    events = [
        ScoreEvent(
            board="global",
            period="2026-11",
            username=names[number % len(names)],
            delta=number % 100 + 1,
            event_id=f"{tag}-{number}",
            client_event_id=number % 3 == 0,
            created_at_ms=now_ms,
        )
        for number in range(rows)
    ]
    return [events[start : start + batch] for start in range(0, rows, batch)]


def as_dict(event: ScoreEvent) -> dict[str, Any]:
    """The column values of an event by name."""
    return dict(zip(COLUMNS, event_row(event), strict=True))


async def databases_execute_many(database: Database, batches: Sequence[Batch]) -> None:
    """`databases`' execute_many: one INSERT per row."""
    statement = (
        f"INSERT INTO score_events ({EVENT_COLUMNS}) VALUES ("
        + ", ".join(f":{column}" for column in COLUMNS)
        + ")"
        + UPSERT
    )
    for batch in batches:
        await database.execute_many(statement, [as_dict(event) for event in batch])


async def sqlalchemy_core(database: Database, batches: Sequence[Batch]) -> None:
    """A SQLAlchemy Core multi-row insert, compiled and run by `databases`."""
    for batch in batches:
        statement = mysql_dialect.insert(TABLE).values([as_dict(event) for event in batch])
        await database.execute(statement.on_duplicate_key_update(id=TABLE.c.id))


async def aiomysql_executemany(database: Database, batches: Sequence[Batch]) -> None:
    """The driver's executemany, which rewrites into one multi-row INSERT."""
    statement = f"INSERT INTO score_events ({EVENT_COLUMNS}) VALUES {ROW}" + UPSERT
    for batch in batches:
        async with (
            database.connection() as connection,
            connection.raw_connection.cursor() as cursor,
        ):
            await cursor.executemany(statement, [event_row(event) for event in batch])


async def ready_statement(database: Database, batches: Sequence[Batch]) -> None:
    """A ready `VALUES (...),(...)` template with flat arguments, one execute."""
    for batch in batches:
        template = f"INSERT INTO score_events ({EVENT_COLUMNS}) VALUES " + ",".join(
            (ROW,) * len(batch)
        )
        arguments = [value for event in batch for value in event_row(event)]
        async with (
            database.connection() as connection,
            connection.raw_connection.cursor() as cursor,
        ):
            await cursor.execute(template + UPSERT, arguments)


async def history_append(history: SqlScoreHistory, batches: Sequence[Batch]) -> None:
    """What the service runs."""
    for batch in batches:
        await history.append(batch)


class NoHistory:
    """Accepts every append at once: what the batcher costs by itself."""

    async def append(self, events: Sequence[ScoreEvent]) -> None:
        """Store nothing."""


async def through_batcher(history: Any, batches: Sequence[Batch], batch: int) -> None:
    """Commit every event in groups of 10 into a running batcher, then drain it."""
    batcher = WriteBatcher(history, flush_max_events=batch, max_buffered_events=1_000_000)
    await batcher.start()
    events = [event for chunk in batches for event in chunk]
    for start in range(0, len(events), 10):
        group = events[start : start + 10]
        with batcher.reserve(len(group)) as reservation:
            reservation.commit(group)
        await asyncio.sleep(0)  # a request handler yields between requests
    lost = await batcher.close(60)
    if lost:
        raise AssertionError(f"{lost} events not written")


async def measure(
    name: str, variant: Variant, batches: Sequence[Batch], empty: Callable[[], Awaitable[int]]
) -> float:
    """Insert every batch, check the row count, print and return rows/s."""
    await empty()
    rows = sum(len(batch) for batch in batches)
    started = time.perf_counter()
    await variant(batches)
    seconds = time.perf_counter() - started
    stored = await empty()
    if stored != rows:
        raise AssertionError(f"{name}: {stored} rows stored, {rows} expected")
    rate = rows / seconds
    print(f"  {name:<40} {rows:>7} rows {seconds:7.3f} s {rate:>10,.0f} rows/s", flush=True)
    return rate


async def run_mysql(arguments: argparse.Namespace) -> None:
    """Every variant against a scratch database on the MySQL/MariaDB server."""
    name = f"lbbench_{secrets.token_hex(4)}"
    admin = await aiomysql.connect(
        host=arguments.host,
        port=arguments.port,
        user=arguments.user,
        password=arguments.password,
        autocommit=True,
    )
    async with admin.cursor() as cursor:
        await cursor.execute(f"CREATE DATABASE `{name}`")
        await cursor.execute("SELECT VERSION()")
        (version,) = await cursor.fetchone()
    credentials = arguments.user + (f":{arguments.password}" if arguments.password else "")
    url = f"mysql+aiomysql://{credentials}@{arguments.host}:{arguments.port}/{name}"
    history = SqlScoreHistory(url)
    database = Database(url, min_size=1, max_size=2, charset="utf8mb4")
    try:
        await history.connect()
        await history.migrate()
        await database.connect()

        async def empty() -> int:
            """Count the rows, then empty the table."""
            async with admin.cursor() as cursor:
                await cursor.execute(f"SELECT COUNT(*) FROM `{name}`.score_events")
                (count,) = await cursor.fetchone()
                await cursor.execute(f"TRUNCATE `{name}`.score_events")
            return int(count)

        print(
            f"MySQL {version} at {arguments.host}:{arguments.port}, "
            f"batches of {arguments.batch}, one batch at a time:"
        )
        slow_rows = max(arguments.batch, arguments.rows // 10)
        variants: list[tuple[str, Variant, int]] = [
            (
                "databases execute_many (row by row)",
                lambda b: databases_execute_many(database, b),
                slow_rows,
            ),
            (
                "SQLAlchemy Core insert().values([...])",
                lambda b: sqlalchemy_core(database, b),
                slow_rows,
            ),
            (
                "aiomysql cursor.executemany",
                lambda b: aiomysql_executemany(database, b),
                arguments.rows,
            ),
            ("ready multi-row statement", lambda b: ready_statement(database, b), arguments.rows),
            (
                "SqlScoreHistory.append (chosen)",
                lambda b: history_append(history, b),
                arguments.rows,
            ),
            (
                "WriteBatcher -> SqlScoreHistory",
                lambda b: through_batcher(history, b, arguments.batch),
                arguments.rows,
            ),
        ]
        for index, (label, variant, rows) in enumerate(variants):
            batches = make_batches(rows, arguments.batch, f"v{index}")
            await measure(label, variant, batches, empty)
        batches = make_batches(arguments.rows * 4, arguments.batch, "noop")
        started = time.perf_counter()
        await through_batcher(NoHistory(), batches, arguments.batch)
        rate = arguments.rows * 4 / (time.perf_counter() - started)
        label = "WriteBatcher -> no-op history"
        print(f"  {label:<40} {arguments.rows * 4:>7} evts {rate:>20,.0f} events/s")
    finally:
        await history.close()
        await database.disconnect()
        async with admin.cursor() as cursor:
            await cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


async def run_sqlite(arguments: argparse.Namespace) -> None:
    """The chosen path on the embedded SQLite history, for comparison."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "bench.db"
        history = SqlScoreHistory(f"sqlite+aiosqlite:///{path}")
        await history.connect()
        await history.migrate()

        print(f"SQLite (WAL) at {path}, batches of {arguments.batch}:")
        batches = make_batches(arguments.rows, arguments.batch, "sqlite")
        rows = arguments.rows
        started = time.perf_counter()
        await history_append(history, batches)
        seconds = time.perf_counter() - started
        await history.close()
        stored = sqlite_rows(path)
        if stored != rows:
            raise AssertionError(f"sqlite: {stored} rows stored, {rows} expected")
        label = "SqlScoreHistory.append"
        print(f"  {label:<40} {rows:>7} rows {seconds:7.3f} s {rows / seconds:>10,.0f} rows/s")


def sqlite_rows(path: Path) -> int:
    """Rows in the SQLite history file."""
    connection = sqlite3.connect(path)
    try:
        (count,) = connection.execute("SELECT COUNT(*) FROM score_events").fetchone()
        return int(count)
    finally:
        connection.close()


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the options and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=50_000, help="rows per fast variant")
    parser.add_argument("--batch", type=int, default=500, help="events per INSERT")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3306)
    parser.add_argument("--user", default="root")
    parser.add_argument("--password", default="")
    parser.add_argument("--sqlite", action="store_true", help="also measure the SQLite history")
    arguments = parser.parse_args(argv)
    asyncio.run(run_mysql(arguments))
    if arguments.sqlite:
        asyncio.run(run_sqlite(arguments))


if __name__ == "__main__":
    main(sys.argv[1:])
