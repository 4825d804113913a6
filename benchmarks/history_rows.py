"""MariaDB CPU per persisted history row, by table design and statement kind (issue #15).

    PYTHONPATH=$PWD .venv/bin/python benchmarks/history_rows.py [--rows 200000]
        [--batch 500] [--old-rows 0] [--pool 128M --pool 2G] [--repeat 3]
        [--variants "name;name;..."] [--client-ids]

Starts one private mariadbd per `--pool` (the bench's settings, `benchmarks.processes`,
with that buffer pool; 2G also gets a 1G redo log), creates one database per variant and
round, optionally fills it with `--old-rows` rows of 12 older periods, then appends
`--rows` fresh events of one live period in batches of `--batch`, one statement at a time,
the way the write batcher does. Reports the mariadbd process's CPU (utime + stime from
/proc) per appended row, the client's CPU per row and the wall rate; `--repeat` rounds run
the variants in a rotated order and the closing table gives each variant's median. Every
variant runs against the same server in the same run: read them as ratios to `current`
(results and decisions: docs/performance.md, "MariaDB CPU per stored row").

The events are the batched ingest's (`benchmarks/scenarios.py`): service-generated event
ids (`~` + 16 hex digits + a hex counter, as before the shorter prefix; the `generated ids
5 characters shorter` variant is today's form), 10,000 players, or with `--client-ids`
canonical uuid4 client event ids.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomysql

from benchmarks.history_rows_built import BuiltAppender
from benchmarks.history_rows_shapes import (
    escape_bytes,
    escape_field,
    hashed,
    integer_ids,
    packed,
    short_id,
)
from benchmarks.processes import PrivateMariaDB, cpu_seconds, remove_directory, scratch_directory

Row = tuple[Any, ...]

_COMMON = """
    delta BIGINT NOT NULL,
    client_event_id BOOL NOT NULL,
    created_at_ms BIGINT NOT NULL,
    applied_at_us BIGINT NULL,
    presence TINYINT NULL,
    id_life BIGINT NOT NULL DEFAULT 0,
"""
_ASCII = "CHARACTER SET ascii COLLATE ascii_bin NOT NULL"
_NAME = "CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL"
_TABLE = "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"

CURRENT = f"""
CREATE TABLE score_events (
    id BIGINT NOT NULL AUTO_INCREMENT,
    board VARCHAR(64) {_ASCII},
    period VARCHAR(16) {_ASCII},
    username VARCHAR(64) {_NAME},
    event_id VARCHAR(128) {_ASCII},
    {_COMMON}
    PRIMARY KEY (id),
    UNIQUE KEY score_events_event (board, period, event_id, id_life),
    KEY score_events_totals (board, period, username, delta),
    KEY score_events_username (username)
) {_TABLE}
"""


REGISTRY = f"""
CREATE TABLE player_periods (
    username VARCHAR(64) {_NAME},
    board VARCHAR(64) {_ASCII},
    period VARCHAR(16) {_ASCII},
    PRIMARY KEY (username, board, period)
) {_TABLE}
"""


EPOCH = (
    "CREATE TABLE registry_epoch (id TINYINT NOT NULL PRIMARY KEY, epoch BIGINT NOT NULL) "
    "ENGINE=InnoDB SELECT 1 AS id, 0 AS epoch"
)


def _without(ddl: str, line: str) -> str:
    return "\n".join(part for part in ddl.splitlines() if line not in part).replace(
        "delta),\n)", "delta)\n)"
    )


@dataclass(frozen=True)
class Variant:
    """One table design: its DDL, its column list and how an event becomes a row."""

    name: str
    ddl: str
    columns: str
    row: Callable[[Row], Row]
    loader: str = "insert"  # insert | load (LOAD DATA LOCAL INFILE) | registry (+ player_periods)
    batch_factor: int = 1  # statements of batch x factor rows (catch-up)


_COLUMNS = (
    "board, period, username, delta, event_id, client_event_id, created_at_ms, applied_at_us, "
    "presence, id_life"
)


def _same(row: Row) -> Row:
    return row


VARIANTS: tuple[Variant, ...] = (
    Variant("current", CURRENT, _COLUMNS, _same),
    Variant("no username index", _without(CURRENT, "score_events_username"), _COLUMNS, _same),
    Variant("no totals index", _without(CURRENT, "score_events_totals"), _COLUMNS, _same),
    Variant(
        "packed binary event id",
        CURRENT.replace(f"event_id VARCHAR(128) {_ASCII}", "event_id VARBINARY(129) NOT NULL"),
        _COLUMNS,
        packed,
    ),
    Variant(
        "16-byte digest key + full id",
        CURRENT.replace(
            "UNIQUE KEY score_events_event (board, period, event_id, id_life)",
            "UNIQUE KEY score_events_event (board, period, event_key, id_life)",
        ).replace(
            "id_life BIGINT NOT NULL DEFAULT 0,",
            "id_life BIGINT NOT NULL DEFAULT 0,\n    event_key BINARY(16) NOT NULL,",
        ),
        _COLUMNS + ", event_key",
        hashed,
    ),
    Variant(
        "clustered on (board,period,event_id,id_life)",
        CURRENT.replace("id BIGINT NOT NULL AUTO_INCREMENT", "id BIGINT NOT NULL AUTO_INCREMENT")
        .replace("PRIMARY KEY (id),", "KEY score_events_id (id),")
        .replace("UNIQUE KEY score_events_event", "PRIMARY KEY"),
        _COLUMNS,
        _same,
    ),
    Variant(
        "integer board and player ids",
        CURRENT.replace(f"board VARCHAR(64) {_ASCII}", "board INT NOT NULL").replace(
            f"username VARCHAR(64) {_NAME}", "username INT NOT NULL"
        ),
        _COLUMNS,
        integer_ids,
    ),
    Variant("current, LOAD DATA LOCAL INFILE", CURRENT, _COLUMNS, _same, loader="load"),
    Variant("current, statements of 10x rows", CURRENT, _COLUMNS, _same, batch_factor=10),
    Variant("current, statements of 40x rows", CURRENT, _COLUMNS, _same, batch_factor=40),
    Variant(
        "no username index, statements of 10x rows",
        _without(CURRENT, "score_events_username"),
        _COLUMNS,
        _same,
        batch_factor=10,
    ),
    Variant("generated ids 5 characters shorter", CURRENT, _COLUMNS, short_id),
    Variant(
        "player_periods table instead of username index",
        _without(CURRENT, "score_events_username"),
        _COLUMNS,
        _same,
        loader="registry",
    ),
    Variant(
        "player_periods, new players only (warm cache + epoch)",
        _without(CURRENT, "score_events_username"),
        _COLUMNS,
        _same,
        loader="registry-cached",
    ),
    # The service's own code (history_rows_built.py): its migrations, MySqlDialect.insert.
    Variant("built: migration 11 registry, MySqlDialect.insert", "", _COLUMNS, _same, "built"),
    Variant("built before: migration 10, autocommit _insert", "", _COLUMNS, _same, "before"),
    Variant("built, players registered before (steady state)", "", _COLUMNS, _same, "warm"),
)


def make_rows(count: int, *, client_ids: bool, period: str) -> list[Row]:
    """The batched ingest's events as `_COLUMNS` rows."""
    now_ms = int(time.time() * 1000)
    prefix = secrets.token_hex(8)
    names = [f"player{n}" if n % 10 else f"jügador{n}" for n in range(10_000)]
    rows: list[Row] = []
    for number in range(count):
        event_id = str(uuid.uuid4()) if client_ids else f"~{prefix}{number:x}"
        rows.append(
            (
                "global",
                period,
                names[(number * 7919) % len(names)],
                number % 9 + 1,
                event_id,
                client_ids,
                now_ms,
                None,
                0,
                0,
            )
        )
    return rows


async def _append(
    connection: Any,
    variant: Variant,
    rows: Sequence[Row],
    workdir: Path,
    known: set[tuple[str, str, str]] | None = None,
    built: BuiltAppender | None = None,
) -> None:
    """One batch into `score_events` (and the registry where the variant has one)."""
    if built is not None:
        await built.append(connection, rows)
        return
    if variant.loader == "load":
        path = workdir / "batch.tsv"
        text = "".join("\t".join(escape_field(v) for v in row) + "\n" for row in rows)
        path.write_bytes(
            text.encode("utf-8")
            if not any(isinstance(v, bytes) for v in rows[0])
            else text.encode("latin-1")
        )
        async with connection.cursor() as cursor:
            # REPLACE/IGNORE are the only duplicate policies LOAD DATA has: IGNORE skips a
            # duplicate (with a warning), as the upsert that changes nothing does.
            await cursor.execute(
                f"LOAD DATA LOCAL INFILE '{path}' IGNORE INTO TABLE score_events "
                "CHARACTER SET utf8mb4 "
                f"FIELDS TERMINATED BY '\\t' LINES TERMINATED BY '\\n' ({variant.columns})"
            )
        return
    if variant.loader.startswith("registry"):
        await _register(connection, variant, rows, set() if known is None else known)
    width = len(rows[0])
    values = ",".join(("(" + ",".join(["%s"] * width) + ")",) * len(rows))
    async with connection.cursor() as cursor:
        statement = cursor.mogrify(
            f"INSERT INTO score_events ({variant.columns}) VALUES {values} "
            "ON DUPLICATE KEY UPDATE id = id",
            [value for row in rows for value in row],
        )
        await cursor.execute(statement)
        if variant.loader == "registry-cached":
            await cursor.execute("COMMIT")


async def _register(
    connection: Any, variant: Variant, rows: Sequence[Row], known: set[tuple[str, str, str]]
) -> None:
    """The batch's (username, board, period) upserted before its events: all of them
    (`registry`), or, in one transaction with the events that first reads the erasure
    epoch, only those this client has not registered yet (`registry-cached`)."""
    triples = {(row[2], row[0], row[1]) for row in rows}
    async with connection.cursor() as cursor:
        if variant.loader == "registry-cached":
            await cursor.execute("START TRANSACTION")
            await cursor.execute("SELECT epoch FROM registry_epoch WHERE id = 1 LOCK IN SHARE MODE")
            triples -= known
            known |= triples
        if not triples:
            return
        marks = ",".join(("(%s,%s,%s)",) * len(triples))
        await cursor.execute(
            f"INSERT INTO player_periods (username, board, period) VALUES {marks} "
            "ON DUPLICATE KEY UPDATE username = player_periods.username",
            [value for triple in sorted(triples) for value in triple],
        )


async def _fill_old(
    connection: Any,
    variant: Variant,
    count: int,
    batch: int,
    work: Path,
    built: BuiltAppender | None,
) -> None:
    # Old rows of 12 earlier periods (registered too where the variant has a registry),
    # loaded in big statements (not measured).
    known: set[tuple[str, str, str]] = set()
    for start in range(0, count, batch * 10):
        size = min(batch * 10, count - start)
        rows = make_rows(size, client_ids=False, period=f"2025-{start % 12 + 1:02d}")
        await _append(connection, variant, [variant.row(r) for r in rows], work, known, built)


async def _measure(
    server: PrivateMariaDB, variant: Variant, name: str, arguments: argparse.Namespace, work: Path
) -> tuple[float, float, float]:
    """One variant in a fresh database: (MariaDB µs/row, client µs/row, rows/s)."""
    connection = await aiomysql.connect(
        host="127.0.0.1",
        port=server.port,
        user="root",
        autocommit=True,
        charset="utf8mb4",
        local_infile=True,
    )
    escape_bytes(connection)
    try:
        async with connection.cursor() as cursor:
            await cursor.execute(f"CREATE DATABASE {name}")
            await cursor.execute(f"USE {name}")
            if variant.ddl:
                await cursor.execute(variant.ddl)
            if variant.loader.startswith("registry"):
                await cursor.execute(REGISTRY)
                await cursor.execute(EPOCH)
        before = variant.loader == "before"
        kind = variant.loader
        built = BuiltAppender(before=before) if kind in ("built", "before", "warm") else None
        if built is not None:
            await built.create_schema(connection)
        if arguments.old_rows:
            await _fill_old(connection, variant, arguments.old_rows, arguments.batch, work, built)
            built = built and BuiltAppender(before=before)  # an empty cache for the live period
        rows = [
            variant.row(row)
            for row in make_rows(arguments.rows, client_ids=arguments.client_ids, period="2026-12")
        ]
        if built is not None and kind == "warm":
            await built.warm(connection, rows)
        size = arguments.batch * variant.batch_factor
        batches = [rows[start : start + size] for start in range(0, len(rows), size)]
        server_before = cpu_seconds(server.pid)
        client_before = time.process_time()
        started = time.perf_counter()
        known: set[tuple[str, str, str]] = set()
        for batch in batches:
            await _append(connection, variant, batch, work, known, built)
        wall = time.perf_counter() - started
        client = time.process_time() - client_before
        server_cpu = cpu_seconds(server.pid) - server_before
        async with connection.cursor() as cursor:
            await cursor.execute("SELECT COUNT(*) FROM score_events WHERE period = '2026-12'")
            (stored,) = await cursor.fetchone()
            await cursor.execute(f"DROP DATABASE {name}")
        if stored != len(rows):
            raise AssertionError(f"{variant.name}: {stored} rows, {len(rows)} expected")
        return server_cpu / len(rows) * 1e6, client / len(rows) * 1e6, len(rows) / wall
    finally:
        connection.close()


async def run_pool(arguments: argparse.Namespace, pool: str) -> dict[str, list[float]]:
    """Every variant, `--repeat` rounds (each in a rotated order), against one private
    mariadbd with buffer pool `pool`: MariaDB µs/row of each round, by variant."""
    directory = scratch_directory()
    options = [f"--innodb-buffer-pool-size={pool}", "--local-infile=1"]
    if pool.upper().endswith("G"):
        options.append("--innodb-log-file-size=1G")
    server = PrivateMariaDB(directory, tuple(options))
    results: dict[str, list[float]] = {}
    chosen = [v for v in VARIANTS if not arguments.variants or v.name in arguments.variants]
    try:
        await server.start()
        work = Path(tempfile.mkdtemp(prefix="lbrows-", dir=directory))
        number = 0
        for round_number in range(arguments.repeat):
            shift = round_number % len(chosen)
            for variant in chosen[shift:] + chosen[:shift]:
                number += 1
                per_server, per_client, rate = await _measure(
                    server, variant, f"rows{number}", arguments, work
                )
                results.setdefault(variant.name, []).append(per_server)
                print(
                    f"  pool {pool:>5} | {variant.name:<46} | MariaDB {per_server:6.2f} µs/row"
                    f" | client {per_client:6.2f} µs/row | {rate:>9,.0f} rows/s",
                    flush=True,
                )
    finally:
        await server.stop()
        remove_directory(directory)
    return results


async def run(arguments: argparse.Namespace) -> None:
    """Each pool in turn, every variant; then the table for docs/performance.md."""
    print(
        f"{arguments.rows:,} rows per variant, batches of {arguments.batch}, "
        f"{arguments.old_rows:,} old rows, {'client uuid' if arguments.client_ids else 'generated'}"
        f" event ids, load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    table: dict[str, dict[str, float]] = {}
    for pool in arguments.pool:
        for name, rounds in (await run_pool(arguments, pool)).items():
            table.setdefault(name, {})[pool] = statistics.median(rounds)
    print()
    print(f"median of {arguments.repeat} rounds")
    print(
        "| variant | "
        + " | ".join(f"MariaDB µs/row, {pool} pool" for pool in arguments.pool)
        + " |"
    )
    print("|---|" + "---|" * len(arguments.pool))
    base = table.get("current", {})
    for name, cells in table.items():
        shown = [
            f"{cells[pool]:.2f} ({cells[pool] / base[pool]:.2f}x)"
            if pool in base
            else f"{cells[pool]:.2f}"
            for pool in arguments.pool
        ]
        print(f"| {name} | " + " | ".join(shown) + " |")


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the options and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--old-rows", type=int, default=0)
    parser.add_argument("--pool", action="append", default=[])
    parser.add_argument(
        "--variants", type=lambda text: set(text.split(";")), default=set(), help="names; names"
    )
    parser.add_argument("--client-ids", action="store_true")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the median is reported")
    arguments = parser.parse_args(argv)
    if not arguments.pool:
        arguments.pool = ["128M", "2G"]
    asyncio.run(run(arguments))


if __name__ == "__main__":
    main(sys.argv[1:])
