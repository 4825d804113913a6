"""A history that stays fast (#15): insert cost and past-period reads with N old rows present,
against an empty history, and with the same N rows archived, in one run.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/history_archive.py [--old-rows 2000000]
        [--probe-rows 50000] [--batch-rows 1000] [--host 127.0.0.1] [--port 3306]
        [--private-mariadb [--mariadb-option=--innodb-buffer-pool-size=4G ...]]

Also the `archive` scenario of `python -m benchmarks` (on the bench's MariaDB). Everything
goes into a private scratch database (dropped afterwards), with the real schema
(`SqlScoreHistory.migrate`); `--private-mariadb` starts a server of its own (fresh datadir
under /tmp, free port, the options of `benchmarks.processes.MARIADB_OPTIONS` plus
`--mariadb-option`s) and also reports its CPU time per probe row. The states, measured the
same way one after the other:

1. **empty**: only the measured past period (`2020-01`: 20,000 events of 2,000 players,
   frozen as the finalizer freezes it);
2. **N old rows in score_events**: N events of 120 older monthly periods (2010-01 ..
   2019-12, 50,000 players), bulk-loaded with multi-row INSERTs (5,000 rows each, two
   connections, progress every minute) and marked final;
3. **N old rows archived, purge pending**: `store.event_archive.archive_events(before=
   2020-01)` moved them to `score_events_archive` (timed: rows/s of the move), measured
   at once, while InnoDB may still purge the deleted rows' index entries;
4. **N old rows archived, purged**: the same once InnoDB's history list is short again;
5. **… purged, flushed** (private server only: it sets a global): every dirty page
   written out first (`innodb_max_dirty_pages_pct = 0` until the pool is clean), to tell
   the page cleaner's background writes apart from the B-trees' state;
6. **… then OPTIMIZE TABLE**: the hot table rebuilt online (`SqlEventArchive.compact`,
   what `leaderboard archive --compact` runs), timed.

In each state: `--probe-rows` events appended to a fresh live period in batches of 500 by
`SqlScoreHistory.append` (what the batcher runs): µs per row; and past-period reads of
`2020-01`, each timed alone (p50): the frozen top 10 and one player's standing (what the
API serves), and the raw-event fold a rebuild reads (`totals`, union of both tables).
Diagnostics per state (printed after the table): buffer pool requests and misses (reads
from disk) per probe row, pages written per row, the history list length and dirty pages
before the probe, and both tables' data/index/free MB after `ANALYZE TABLE`.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import secrets
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import aiomysql

from benchmarks.bench import Bench, Row, ratio
from benchmarks.processes import PrivateMariaDB, cpu_seconds, remove_directory, scratch_directory
from store.board_kinds import SortOrder, TieBreak
from store.boards import Board, ResetPeriod
from store.event_archive import BATCH_ROWS, archive_events
from store.models import ScoreEvent
from store.sql import SqlScoreHistory
from store.sql.frozen_rows import ranked

BOARD = Board(id="history", reset=ResetPeriod.MONTHLY)
PAST = "2020-01"
PAST_EVENTS = 20_000
PAST_PLAYERS = 2_000
OLD_PLAYERS = 50_000
OLD_PERIODS = [f"{year}-{month:02d}" for year in range(2010, 2020) for month in range(1, 13)]
BATCH = 500
READS = 300


@dataclass
class State:
    """One state's figures."""

    name: str
    insert_us_per_row: float = 0.0
    top_p50_ms: float = 0.0
    player_p50_ms: float = 0.0
    totals_p50_ms: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)


async def _timed_p50(operation: Callable[[], Awaitable[object]], times: int) -> float:
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        await operation()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def _events(period: str, count: int, players: int, prefix: str) -> list[ScoreEvent]:
    chooser = random.Random(period)
    return [
        ScoreEvent(
            board=BOARD.id,
            period=period,
            username=f"{prefix}{chooser.randrange(players):06d}",
            delta=chooser.randint(1, 100),
            event_id=f"~{prefix}{index:09x}",
            client_event_id=False,
            created_at_ms=1_580_000_000_000,
        )
        for index in range(count)
    ]


async def _status(admin: aiomysql.Connection) -> dict[str, int]:
    """The InnoDB counters the diagnostics read (SHOW GLOBAL STATUS)."""
    async with admin.cursor() as cursor:
        await cursor.execute("SHOW GLOBAL STATUS LIKE 'Innodb_%'")
        return {
            str(name): int(value)
            for name, value in await cursor.fetchall()
            if str(value).lstrip("-").isdigit()
        }


async def _table_sizes(admin: aiomysql.Connection, database: str) -> dict[str, float]:
    """MB of each event table (clustered + secondary indexes, free space) after ANALYZE."""
    sizes: dict[str, float] = {}
    async with admin.cursor() as cursor:
        for table in ("score_events", "score_events_archive"):
            await cursor.execute(f"ANALYZE TABLE `{database}`.{table}")
            await cursor.fetchall()
            await cursor.execute(
                "SELECT data_length, index_length, data_free FROM information_schema.tables "
                "WHERE table_schema = %s AND table_name = %s",
                (database, table),
            )
            row = await cursor.fetchone()
            if row is not None:
                short = "hot" if table == "score_events" else "archive"
                sizes[f"{short}_data_mb"] = int(row[0]) / 2**20
                sizes[f"{short}_index_mb"] = int(row[1]) / 2**20
                sizes[f"{short}_free_mb"] = int(row[2]) / 2**20
    return sizes


@dataclass
class Probe:
    """Where the diagnostics come from: the admin connection, and the server's pid when
    the benchmark started the server itself (its CPU time per probe row)."""

    admin: aiomysql.Connection
    database: str
    server_pid: int | None = None


async def _measure(
    history: SqlScoreHistory, name: str, live: str, probe_rows: int, probe: Probe | None = None
) -> State:
    state = State(name)
    rows = _events(live, probe_rows, 100_000, "live")
    before = await _status(probe.admin) if probe else {}
    cpu_before = cpu_seconds(probe.server_pid) if probe and probe.server_pid else 0.0
    started = time.perf_counter()
    for start in range(0, len(rows), BATCH):
        await history.append(rows[start : start + BATCH])
    state.insert_us_per_row = (time.perf_counter() - started) / len(rows) * 1e6
    if probe is not None:
        if probe.server_pid:
            state.extra["server_cpu_us_per_row"] = (
                (cpu_seconds(probe.server_pid) - cpu_before) / len(rows) * 1e6
            )
        after = await _status(probe.admin)
        for counter, label in (
            ("Innodb_buffer_pool_reads", "pool_misses_per_row"),
            ("Innodb_buffer_pool_read_requests", "pool_requests_per_row"),
            ("Innodb_data_writes", "data_writes_per_row"),
            ("Innodb_pages_written", "pages_written_per_row"),
        ):
            state.extra[label] = (after.get(counter, 0) - before.get(counter, 0)) / len(rows)
        state.extra["history_list_length"] = before.get("Innodb_history_list_length", 0)
        state.extra["dirty_pages_before"] = before.get("Innodb_buffer_pool_pages_dirty", 0)
        state.extra.update(await _table_sizes(probe.admin, probe.database))
    standings = history.standings()
    names = [f"past{n:06d}" for n in random.Random(5).sample(range(PAST_PLAYERS), 50)]
    cycle = iter(names * (READS // len(names) + 1))
    state.top_p50_ms = await _timed_p50(lambda: standings.top(BOARD.id, PAST, 10, 0), READS)
    state.player_p50_ms = await _timed_p50(
        lambda: standings.player(BOARD.id, PAST, next(cycle)), READS
    )
    state.totals_p50_ms = await _timed_p50(lambda: history.totals(BOARD.id, PAST), 20)
    return state


async def _bulk_load(
    host: str, port: int, database: str, old_rows: int, say: Callable[[str], None]
) -> float:
    """N old events over OLD_PERIODS, multi-row INSERTs on two connections; seconds.

    In key order within each period (event ids ascending), 5,000 rows per statement: the
    clustered and unique keys append, the username and totals indexes take each row at
    one of the 50,000 players' places, as a live history's would."""
    per_period, extra = divmod(old_rows, len(OLD_PERIODS))
    queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=4)
    loaded = 0
    started = time.perf_counter()
    told = started

    async def producer() -> None:
        chooser = random.Random(11)
        values: list[str] = []
        for number, period in enumerate(OLD_PERIODS):
            for index in range(per_period + (1 if number < extra else 0)):
                values.append(
                    f"('{BOARD.id}','{period}','old{chooser.randrange(OLD_PLAYERS):06d}',"
                    f"{chooser.randint(1, 100)},'~o{index:09x}',0,1300000000000)"
                )
                if len(values) == 5_000:
                    await queue.put(",".join(values))
                    values = []
        if values:
            await queue.put(",".join(values))
        for _ in range(2):
            await queue.put(None)

    async def consumer() -> None:
        connection = await aiomysql.connect(
            host=host, port=port, user="root", db=database, autocommit=True
        )
        nonlocal loaded, told
        try:
            while (values := await queue.get()) is not None:
                async with connection.cursor() as cursor:
                    loaded += await cursor.execute(
                        "INSERT INTO score_events (board, period, username, delta, event_id, "
                        f"client_event_id, created_at_ms) VALUES {values}"
                    )
                if time.perf_counter() - told >= 60:
                    told = time.perf_counter()
                    elapsed = told - started
                    say(
                        f"  loading: {loaded:,} of {old_rows:,} rows in {elapsed:.0f} s "
                        f"({loaded / elapsed:,.0f} rows/s)"
                    )
        finally:
            connection.close()

    await asyncio.gather(producer(), consumer(), consumer())
    # Final, as the finalizer would have left them (the archive moves final periods only).
    connection = await aiomysql.connect(
        host=host, port=port, user="root", db=database, autocommit=True
    )
    try:
        async with connection.cursor() as cursor:
            await cursor.executemany(
                "INSERT INTO period_results (board, period, player_count, body, finalized_at_ms) "
                "VALUES (%s, %s, 0, '{}', 0)",
                [(BOARD.id, period) for period in OLD_PERIODS],
            )
    finally:
        connection.close()
    return time.perf_counter() - started


async def _purge_wait(admin: aiomysql.Connection, limit: float = 900.0) -> float:
    """Seconds until InnoDB's history list (undo of deleted rows not yet purged) is short."""
    started = time.perf_counter()
    while time.perf_counter() - started < limit:
        async with admin.cursor() as cursor:
            await cursor.execute("SHOW GLOBAL STATUS LIKE 'Innodb_history_list_length'")
            row = await cursor.fetchone()
        if row is None or int(row[1]) < 5_000:
            break
        await asyncio.sleep(1.0)
    return time.perf_counter() - started


async def _flush_wait(admin: aiomysql.Connection, limit: float = 600.0) -> float:
    """Seconds until the buffer pool holds (almost) no dirty page, the page cleaner told to
    flush everything meanwhile (innodb_max_dirty_pages_pct = 0, restored afterwards)."""
    started = time.perf_counter()
    async with admin.cursor() as cursor:
        await cursor.execute("SELECT @@GLOBAL.innodb_max_dirty_pages_pct")
        row = await cursor.fetchone()
        assert row is not None
        await cursor.execute("SET GLOBAL innodb_max_dirty_pages_pct = 0")
        try:
            while time.perf_counter() - started < limit:
                await cursor.execute("SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_pages_dirty'")
                dirty = await cursor.fetchone()
                if dirty is None or int(dirty[1]) < 1_000:
                    break
                await asyncio.sleep(1.0)
        finally:
            await cursor.execute(f"SET GLOBAL innodb_max_dirty_pages_pct = {float(row[0])}")
    return time.perf_counter() - started


async def run(
    host: str,
    port: int,
    old_rows: int,
    probe_rows: int,
    say: Callable[[str], None],
    *,
    batch_rows: int = BATCH_ROWS,
    server_pid: int | None = None,
) -> list[State]:
    """The five states' figures, in one private database (dropped afterwards)."""
    database = f"lbarchive_{secrets.token_hex(4)}"
    admin = await aiomysql.connect(host=host, port=port, user="root", autocommit=True)
    async with admin.cursor() as cursor:
        await cursor.execute(f"CREATE DATABASE `{database}`")
    probe = Probe(admin, database, server_pid)
    history = SqlScoreHistory(f"mysql+aiomysql://root@{host}:{port}/{database}", timeout=600)

    async def measure(name: str, live: str) -> State:
        state = await _measure(history, name, live, probe_rows, probe)
        states.append(state)
        say(f"  {name}: {state}")
        return state

    states: list[State] = []
    try:
        await history.connect()
        await history.migrate()
        await history.append(_events(PAST, PAST_EVENTS, PAST_PLAYERS, "past"))
        totals = await history.totals(BOARD.id, PAST)
        frozen = ranked(SortOrder.DESC, TieBreak.SHARED, totals, {})
        await history.standings().freeze(BOARD.id, PAST, frozen, now_ms=1, delivery_id=None)
        await measure("empty history", "2999-01")
        loaded = await _bulk_load(host, port, database, old_rows, say)
        say(f"  loaded {old_rows:,} old rows in {loaded:.1f} s")
        hot = await measure(f"{old_rows:,} old rows in score_events", "2999-02")
        hot.extra["bulk_load_seconds"] = loaded
        started = time.perf_counter()
        told = [started, 0]

        def progress(what: str, board: str, period: str, rows: int) -> None:
            told[1] += rows
            if time.perf_counter() - told[0] >= 60:
                told[0] = time.perf_counter()
                elapsed = told[0] - started
                say(f"  archiving: {told[1]:,} rows in {elapsed:.0f} s, now {period}")

        report = await archive_events(
            history.archive(),
            history.standings(),
            [BOARD],
            now=datetime.now(UTC),
            before=date(2020, 1, 1),
            retention_days=None,
            batch_rows=batch_rows,
            progress=progress,
        )
        moved = sum(report.archived.values())
        seconds = time.perf_counter() - started
        say(f"  archived {moved:,} rows in {seconds:.1f} s ({moved / seconds:,.0f} rows/s)")
        pending = await measure(f"{old_rows:,} old rows archived, purge pending", "2999-03")
        pending.extra["archive_rows_per_second"] = moved / seconds
        pending.extra["archived_rows"] = moved
        # InnoDB purges the deleted rows' index entries in the background: measured again
        # once it is done, the steady state of an archived history.
        purged = await _purge_wait(admin)
        say(f"  InnoDB purge done after {purged:.1f} s")
        steady = await measure(f"{old_rows:,} old rows archived, purged", "2999-04")
        steady.extra["purge_wait_seconds"] = purged
        if server_pid is not None:
            # A private server only (a global setting): every dirty page written out first,
            # to tell the page cleaner's background writes apart from the B-trees' state.
            flushed = await _flush_wait(admin)
            say(f"  dirty pages flushed after {flushed:.1f} s")
            clean = await measure(f"{old_rows:,} old rows archived, purged, flushed", "2999-06")
            clean.extra["flush_wait_seconds"] = flushed
        # The lever: rebuild the hot table once its old rows are gone (what `leaderboard
        # archive --optimize` runs): compact B-trees of the rows that are left.
        started = time.perf_counter()
        await history.archive().compact()
        rebuilt = time.perf_counter() - started
        say(f"  OPTIMIZE TABLE score_events took {rebuilt:.1f} s")
        lever = await measure(f"{old_rows:,} old rows archived, then OPTIMIZE TABLE", "2999-05")
        lever.extra["optimize_seconds"] = rebuilt
        return states
    finally:
        await history.close()
        async with admin.cursor() as cursor:
            await cursor.execute(f"DROP DATABASE IF EXISTS `{database}`")
        admin.close()


def table(states: list[State], old_rows: int, probe_rows: int) -> str:
    """The figures as a Markdown table, with ratios against the empty history."""
    base = states[0]
    lines = [
        f"N = {old_rows:,} old rows, {probe_rows:,} probe rows in batches of {BATCH}",
        "",
        "| history | insert µs/row | top 10 p50 ms | player p50 ms | rebuild fold p50 ms |",
        "|---|---|---|---|---|",
    ]
    for state in states:
        lines.append(
            f"| {state.name} | {state.insert_us_per_row:.1f} "
            f"({state.insert_us_per_row / base.insert_us_per_row:.2f}x) | "
            f"{state.top_p50_ms:.2f} ({state.top_p50_ms / base.top_p50_ms:.2f}x) | "
            f"{state.player_p50_ms:.2f} ({state.player_p50_ms / base.player_p50_ms:.2f}x) | "
            f"{state.totals_p50_ms:.1f} ({state.totals_p50_ms / base.totals_p50_ms:.2f}x) |"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """Run once against a server and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old-rows", type=int, default=2_000_000)
    parser.add_argument("--probe-rows", type=int, default=50_000)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3306)
    parser.add_argument(
        "--private-mariadb",
        action="store_true",
        help="start a private mariadbd (fresh datadir under /tmp, free port) instead of "
        "using --host/--port; its CPU time per probe row is reported too",
    )
    parser.add_argument(
        "--mariadb-option",
        action="append",
        default=[],
        help="an extra mariadbd option for --private-mariadb, e.g. "
        "--mariadb-option=--innodb-buffer-pool-size=4G (repeatable)",
    )
    parser.add_argument(
        "--batch-rows", type=int, default=BATCH_ROWS, help="the archive's rows per transaction"
    )
    arguments = parser.parse_args(argv)

    def say(line: str) -> None:
        print(f"{datetime.now(UTC):%H:%M:%S} {line}", flush=True)

    async def go() -> list[State]:
        if not arguments.private_mariadb:
            return await run(
                arguments.host,
                arguments.port,
                arguments.old_rows,
                arguments.probe_rows,
                say,
                batch_rows=arguments.batch_rows,
            )
        directory = scratch_directory()
        server = PrivateMariaDB(directory / "mariadb", tuple(arguments.mariadb_option))
        try:
            await server.start()
            say(f"private mariadbd pid {server.pid} port {server.port} in {directory}")
            return await run(
                "127.0.0.1",
                server.port,
                arguments.old_rows,
                arguments.probe_rows,
                say,
                batch_rows=arguments.batch_rows,
                server_pid=server.pid,
            )
        finally:
            await server.stop(timeout=120)
            remove_directory(directory)

    states = asyncio.run(go())
    print(table(states, arguments.old_rows, arguments.probe_rows))
    for state in states:
        print(f"{state.name}: " + ", ".join(f"{k} {v:,.2f}" for k, v in state.extra.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))


async def archive_scenario(bench: Bench, context: object) -> list[Row]:
    """The `archive` scenario of `python -m benchmarks`: the states of `run` on the bench's
    MariaDB (200,000 old rows in --quick, 5M in the full run; the 50M run of #15 is
    `benchmarks/history_archive.py --old-rows 50000000`, docs/performance.md)."""
    from benchmarks.scenarios import say

    old_rows = bench.options.size(200_000, 5_000_000)
    probe_rows = bench.options.size(10_000, 50_000)
    server_pid = bench.mariadb.pid if bench.mariadb is not None else None
    states = await run(
        bench.mysql_host, bench.mysql_port, old_rows, probe_rows, say, server_pid=server_pid
    )
    base = states[0]
    rows: list[Row] = []
    for state in states[1:]:
        for label, value, baseline, unit in (
            ("insert µs/row", state.insert_us_per_row, base.insert_us_per_row, "µs/row"),
            ("past top 10 p50", state.top_p50_ms, base.top_p50_ms, "ms"),
            ("past player p50", state.player_p50_ms, base.player_p50_ms, "ms"),
        ):
            rows.append(
                Row(
                    scenario="archive",
                    measured=f"{label}, {state.name}",
                    value=f"{value:.2f} {unit}",
                    baseline=f"empty history {baseline:.2f} {unit}",
                    ratio=ratio(value, baseline),
                    target="≤ 1.3x the empty history's",
                    passed=(ratio(value, baseline) or 99) <= 1.3 if old_rows >= 5_000_000 else None,
                    details=dict(state.extra),
                )
            )
    return rows
