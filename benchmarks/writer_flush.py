"""What keeping writers' sequences in `writer_sequences` costs a flush, and saves a rebuild.

    .venv/bin/python -m benchmarks.writer_flush [--rounds 300] [--host 127.0.0.1] [--port 3306]

One private MariaDB database (dropped afterwards). Flushes of 500 events, by
`SqlScoreHistory.append`, in alternating rounds: events without a writer (one autocommit
INSERT) and events of 4 writers (BEGIN, the INSERT, one multi-row upsert of
writer_sequences, COMMIT); median wall time of each. Then the rebuild's read of the
period's writers, both ways: the GROUP BY over the period's events that it replaced (no
index) and the writer_sequences key range, each on its own connection, twice.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import secrets
import statistics
import time

import aiomysql

from store.models import ScoreEvent
from store.sql import SqlScoreHistory

BOARD = "global"
PERIOD = "2026-12"
FLUSH = 500
WRITERS = 4
_OLD_READ = (
    "SELECT writer_id, MAX(writer_sequence) FROM score_events WHERE board = %s AND period = %s "
    "AND writer_id IS NOT NULL GROUP BY writer_id"
)
_NEW_READ = "SELECT writer_id, sequence FROM writer_sequences WHERE board = %s AND period = %s"


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300, help="flushes of each kind")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3306)
    return parser.parse_args()


def flush(first: int, sequence: int | None) -> list[ScoreEvent]:
    """FLUSH events numbered from `first`; of WRITERS writers at `sequence` unless None."""
    events = []
    for number in range(first, first + FLUSH):
        event = ScoreEvent(
            board=BOARD,
            period=PERIOD,
            username=f"player-{number % 20_000}",
            delta=1,
            event_id=f"~{number:x}",
            client_event_id=False,
            created_at_ms=1_790_000_000_000,
        )
        if sequence is not None:
            event = dataclasses.replace(
                event, writer_id=f"game-server-{number % WRITERS}", sequence=sequence
            )
        events.append(event)
    return events


async def timed_read(host: str, port: int, database: str, statement: str) -> tuple[float, int]:
    """(seconds, rows) of one read on a fresh connection (the connect not counted)."""
    connection = await aiomysql.connect(host=host, port=port, user="root", db=database)
    try:
        async with connection.cursor() as cursor:
            started = time.perf_counter()
            await cursor.execute(statement, (BOARD, PERIOD))
            rows = await cursor.fetchall()
            return time.perf_counter() - started, len(rows)
    finally:
        connection.close()


async def run(rounds: int, host: str, port: int) -> None:
    """Both measurements, printed."""
    database = f"lbwriters_{secrets.token_hex(4)}"
    admin = await aiomysql.connect(host=host, port=port, user="root", autocommit=True)
    async with admin.cursor() as cursor:
        await cursor.execute(f"CREATE DATABASE `{database}`")
    history = SqlScoreHistory(f"mysql+aiomysql://root@{host}:{port}/{database}", timeout=600)
    try:
        await history.connect()
        await history.migrate()
        times: dict[bool, list[float]] = {False: [], True: []}
        number = 0
        for round_number in range(rounds):
            order = (True, False) if round_number % 2 else (False, True)
            for with_writers in order:
                events = flush(number, round_number if with_writers else None)
                number += FLUSH
                started = time.perf_counter()
                await history.append(events)
                times[with_writers].append(time.perf_counter() - started)
        for with_writers in (False, True):
            median = statistics.median(times[with_writers]) * 1e3
            label = f"{WRITERS} writers" if with_writers else "no writer"
            print(f"append of {FLUSH} events, {label}: median {median:.2f} ms ({rounds} flushes)")
        for _ in range(2):
            for label, statement in (("GROUP BY events", _OLD_READ), ("key range", _NEW_READ)):
                seconds, found = await timed_read(host, port, database, statement)
                print(
                    f"writers read, {label}: {seconds * 1e3:.1f} ms "
                    f"({found} writers, {number:,} rows in the period)"
                )
    finally:
        await history.close()
        async with admin.cursor() as cursor:
            await cursor.execute(f"DROP DATABASE IF EXISTS `{database}`")
        admin.close()


def main() -> None:
    """Run it with the command line's arguments."""
    options = arguments()
    asyncio.run(run(options.rounds, options.host, options.port))


if __name__ == "__main__":
    main()
