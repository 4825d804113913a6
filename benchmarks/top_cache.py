"""A read storm on the top of a board, with the per-instance top cache and without.

    python -m benchmarks.top_cache [--seconds 3] [--readers 64] [--players 10000]
        [--writes 200] [--http]

Starts its own redis-server (nothing else uses it), loads one board period, then for each
configuration runs `readers` concurrent loops of top(limit 10) for `seconds` (after a
warm-up), first with no writes, then while another instance (a second store on the same
Redis) writes `writes` increments per second into the top 50: each of them can reorder the
top 10, the worst case for the cache.

Redis load comes from INFO commandstats before and after each measured window:

- round trips: EVALSHA calls (every read and every write is one script call), minus the
  writer's one per increment: exact;
- commands: everything Redis executed, the commands inside the scripts included (one top()
  is EVALSHA + EXISTS + ZRANGE + ZCOUNT), minus the writer's share, measured beforehand
  per increment: approximate when there are writes.

Store level: `RedisRankingStore` alone against `TopCache` in front of it, in this
process. With `--http`: `leaderboard serve` (one worker, SQLite history) with
`LEADERBOARD_TOP_CACHE_STALENESS_MS` 0 and 100, loaded over HTTP by `benchmarks.loadgen`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import redis.asyncio as redis_asyncio
import uvloop

from benchmarks import documents
from benchmarks.loadgen import closed_loop, latency_summary
from benchmarks.processes import (
    LeaderboardService,
    PrivateRedis,
    remove_directory,
    scratch_directory,
    stop_all,
)
from store.boards import Board, ResetPeriod
from store.cached_ranking import TopCache
from store.models import ScoreIncrement
from store.ports import TopReads
from store.redis import RedisRankingStore

BOARD = Board("global", ResetPeriod.MONTHLY)
KEY_PREFIX = "lb"
RETENTION = timedelta(days=35)
LIMIT = 10
STALENESS_SECONDS = 0.1
WRITTEN_TOP = 50
"""The writer bumps players among the top this many."""
WARMUP_SECONDS = 0.5
CALIBRATION_WRITES = 500


@dataclass
class Options:
    """The command line."""

    seconds: float
    readers: int
    players: int
    writes: float
    http: bool


@dataclass(frozen=True)
class RedisCounts:
    """What Redis executed so far."""

    round_trips: int
    commands: int

    def __sub__(self, other: RedisCounts) -> RedisCounts:
        return RedisCounts(self.round_trips - other.round_trips, self.commands - other.commands)


@dataclass
class Result:
    """One configuration's measurement."""

    level: str
    cache: str
    writes: float
    reads: int
    seconds: float
    p50_ms: float
    p99_ms: float
    redis: RedisCounts
    hit_ratio: float | None = None
    service_cpu_ms: float | None = None

    @property
    def reads_per_second(self) -> float:
        """Throughput of the storm."""
        return self.reads / self.seconds

    def per_thousand(self, count: float) -> float:
        """`count` per 1000 reads."""
        return count / max(1, self.reads) * 1000


def parse(argv: Sequence[str]) -> Options:
    """Read the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.top_cache",
        description="topPlayers read storm, with the per-instance top cache and without.",
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="measured seconds per run")
    parser.add_argument("--readers", type=int, default=64, help="concurrent readers")
    parser.add_argument("--players", type=int, default=10_000, help="players on the board")
    parser.add_argument(
        "--writes", type=float, default=200.0, help="writes/s into the top during the second run"
    )
    parser.add_argument("--http", action="store_true", help="also through `leaderboard serve`")
    arguments = parser.parse_args(argv)
    return Options(
        seconds=arguments.seconds,
        readers=arguments.readers,
        players=arguments.players,
        writes=arguments.writes,
        http=arguments.http,
    )


def store(url: str) -> RedisRankingStore:
    """A Redis ranking store on the private server (one per simulated instance)."""
    return RedisRankingStore.from_url(
        url, key_prefix=KEY_PREFIX, boards=(BOARD,), retention=RETENTION
    )


async def redis_counts(client: redis_asyncio.Redis) -> RedisCounts:
    """Script calls and commands Redis executed since it started, INFO itself left out."""
    stats: dict[str, Any] = await client.info("commandstats")
    calls = {
        name.removeprefix("cmdstat_"): int(fields["calls"])
        for name, fields in stats.items()
        if name.startswith("cmdstat_") and name != "cmdstat_info"
    }
    return RedisCounts(
        round_trips=calls.get("evalsha", 0) + calls.get("eval", 0), commands=sum(calls.values())
    )


class Writer:
    """Another instance writing into the top at a steady rate (0: idle)."""

    def __init__(self, url: str, period: str, usernames: Sequence[str]) -> None:
        self._store = store(url)
        self._period = period
        self._usernames = usernames
        self._random = random.Random(7)
        self.writes = 0
        self._task: asyncio.Task[None] | None = None

    async def write(self) -> None:
        """One increment of a random player among the leaders."""
        increment = ScoreIncrement(
            board=BOARD.id,
            period=self._period,
            username=self._random.choice(self._usernames),
            delta=self._random.randint(1, 50),
            event_id=f"~{uuid.uuid4().hex}",
            client_event_id=False,
        )
        await self._store.increment([increment])
        self.writes += 1

    def start(self, per_second: float) -> None:
        """Begin writing `per_second` (nothing when 0)."""
        if per_second > 0:
            self._task = asyncio.create_task(self._run(1.0 / per_second))

    async def _run(self, interval: float) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            await self.write()
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - loop.time()))

    async def stop(self) -> None:
        """Stop writing and close the store."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._store.close()


async def leaders(url: str, period: str) -> list[str]:
    """The usernames of the top `WRITTEN_TOP` right now."""
    reader = store(url)
    try:
        return [player.username for player in await reader.top(BOARD.id, period, WRITTEN_TOP, 0)]
    finally:
        await reader.close()


async def commands_per_write(url: str, period: str, usernames: Sequence[str]) -> float:
    """What one of the writer's increments costs Redis, in commands (script and publish)."""
    writer = Writer(url, period, usernames)
    admin = redis_asyncio.Redis.from_url(url)
    try:
        await writer.write()  # loads the script
        before = await redis_counts(admin)
        for _ in range(CALIBRATION_WRITES):
            await writer.write()
        return (await redis_counts(admin) - before).commands / CALIBRATION_WRITES
    finally:
        await writer.stop()
        await admin.aclose()


async def storm(
    read: Callable[[], Awaitable[object]], readers: int, seconds: float
) -> tuple[list[float], float]:
    """`readers` loops of `read` for `seconds` after a warm-up: latencies and the window."""
    loop = asyncio.get_running_loop()
    record_from = loop.time() + WARMUP_SECONDS
    deadline = record_from + seconds
    latencies: list[float] = []
    perf = time.perf_counter

    async def reader() -> None:
        while True:
            now = loop.time()
            if now >= deadline:
                return
            started = perf()
            await read()
            if now >= record_from:
                latencies.append(perf() - started)

    await asyncio.gather(*(reader() for _ in range(readers)))
    return latencies, seconds


def reads_only(counts: RedisCounts, writes: int, per_write: float) -> RedisCounts:
    """Redis work of the reads: the writer's share taken out."""
    return RedisCounts(
        round_trips=max(0, counts.round_trips - writes),
        commands=max(0, round(counts.commands - writes * per_write)),
    )


async def store_run(
    redis: PrivateRedis,
    period: str,
    options: Options,
    *,
    cached: bool,
    writes: float,
    usernames: Sequence[str],
    per_write: float,
) -> Result:
    """One storm on this process's store, cached or not, with or without a writer."""
    inner = store(redis.url)
    cache = TopCache(inner, STALENESS_SECONDS) if cached else None
    ranking: TopReads = inner if cache is None else cache
    writer = Writer(redis.url, period, usernames)
    admin = redis_asyncio.Redis.from_url(redis.url)
    marks: dict[str, Any] = {}

    async def mark_after_warmup() -> None:
        await asyncio.sleep(WARMUP_SECONDS)
        marks["redis"] = await redis_counts(admin)
        marks["writes"] = writer.writes
        if cache is not None:
            marks["hits"], marks["misses"] = cache.hits, cache.misses

    try:
        writer.start(writes)
        marker = asyncio.create_task(mark_after_warmup())
        latencies, seconds = await storm(
            lambda: ranking.top(BOARD.id, period, LIMIT, 0), options.readers, options.seconds
        )
        await marker
        counts = await redis_counts(admin) - marks["redis"]
        writes_done = writer.writes - marks["writes"]
        hit_ratio = None
        if cache is not None:
            hits = cache.hits - marks["hits"]
            misses = cache.misses - marks["misses"]
            hit_ratio = hits / max(1, hits + misses)
    finally:
        await writer.stop()
        if cache is not None:
            await cache.close()
        await inner.close()
        await admin.aclose()
    summary = latency_summary(latencies)
    return Result(
        level="store",
        cache=f"{STALENESS_SECONDS * 1000:.0f} ms" if cached else "off",
        writes=writes,
        reads=len(latencies),
        seconds=seconds,
        p50_ms=summary["p50_ms"],
        p99_ms=summary["p99_ms"],
        redis=reads_only(counts, writes_done, per_write),
        hit_ratio=hit_ratio,
    )


async def http_run(
    redis: PrivateRedis,
    directory: Path,
    period: str,
    options: Options,
    *,
    staleness_ms: int,
    writes: float,
    usernames: Sequence[str],
    per_write: float,
) -> Result:
    """One storm through `leaderboard serve` with the cache setting given."""
    service = LeaderboardService(
        directory / f"service-{staleness_ms}-{writes:.0f}",
        {
            "LEADERBOARD_REDIS_URL": redis.url,
            "LEADERBOARD_DATABASE_URL": f"sqlite+aiosqlite:///{directory / 'history.db'}",
            "LEADERBOARD_KEY_PREFIX": KEY_PREFIX,
            "LEADERBOARD_WRITE_TOKEN": "benchmark",
            "LEADERBOARD_TOP_CACHE_STALENESS_MS": str(staleness_ms),
            "LEADERBOARD_LOG_LEVEL": "WARNING",
        },
        workers=1,
    )
    writer = Writer(redis.url, period, usernames)
    admin = redis_asyncio.Redis.from_url(redis.url)
    try:
        await service.start()
        writer.start(writes)
        await asyncio.sleep(WARMUP_SECONDS)
        before, writes_before = await redis_counts(admin), writer.writes
        recorder = await closed_loop(
            "127.0.0.1",
            service.port,
            connections=options.readers,
            duration=options.seconds,
            next_request=documents.cycling(documents.reads(documents.TOP, BOARD.id, None)),
            check=lambda _meta, status, body: status == 200 and b'"errors"' not in body,
            cpu_probe=service.cpu,
        )
        counts = await redis_counts(admin) - before
        writes_done = writer.writes - writes_before
    finally:
        await writer.stop()
        await admin.aclose()
        await service.stop()
    if recorder.errors:
        print(f"  {recorder.errors} failed requests, e.g. {recorder.error_samples[:1]}")
    summary = recorder.summary()
    return Result(
        level="http",
        cache=f"{staleness_ms} ms" if staleness_ms else "off",
        writes=writes,
        reads=recorder.ok,
        seconds=recorder.seconds,
        p50_ms=summary["p50_ms"],
        p99_ms=summary["p99_ms"],
        redis=reads_only(counts, writes_done, per_write),
        service_cpu_ms=summary.get("server_cpu_ms_per_request"),
    )


def _optional(value: float | None, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _times(value: float, baseline: float, digits: int) -> str:
    return f"x{value / baseline:.{digits}f}" if baseline else ""


def table(results: Sequence[Result], readers: int) -> str:
    """Markdown: one row per run, then the cached/uncached ratios of each pair."""
    lines = [
        f"| level | cache | writes/s into top {WRITTEN_TOP} | reads/s ({readers} readers) "
        "| p50 ms | p99 ms | Redis round trips / 1000 reads | Redis commands / 1000 reads "
        "| hit ratio | service CPU ms / read |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for result in results:
        lines.append(
            f"| {result.level} | {result.cache} | {result.writes:.0f} "
            f"| {result.reads_per_second:,.0f} | {result.p50_ms:.3f} | {result.p99_ms:.3f} "
            f"| {result.per_thousand(result.redis.round_trips):,.1f} "
            f"| {result.per_thousand(result.redis.commands):,.1f} "
            f"| {_optional(result.hit_ratio, 4)} | {_optional(result.service_cpu_ms, 3)} |"
        )
    for off, on in zip(results[::2], results[1::2], strict=True):
        round_trips = _times(
            on.per_thousand(on.redis.round_trips), off.per_thousand(off.redis.round_trips), 4
        )
        commands = _times(
            on.per_thousand(on.redis.commands), off.per_thousand(off.redis.commands), 4
        )
        cpu = ""
        if on.service_cpu_ms is not None and off.service_cpu_ms:
            cpu = _times(on.service_cpu_ms, off.service_cpu_ms, 2)
        lines.append(
            f"| {on.level} | ratio {on.cache}/off | {on.writes:.0f} "
            f"| {_times(on.reads_per_second, off.reads_per_second, 1)} "
            f"| {_times(on.p50_ms, off.p50_ms, 3)} | {_times(on.p99_ms, off.p99_ms, 3)} "
            f"| {round_trips} | {commands} | | {cpu} |"
        )
    return "\n".join(lines)


async def run(options: Options) -> None:
    """Start Redis, load the board, run every configuration, print the table."""
    directory = scratch_directory()
    redis = PrivateRedis(directory / "redis")
    try:
        await redis.start()
        period = BOARD.current_period()
        loader = store(redis.url)
        try:
            players = ((f"player{index:06d}", index) for index in range(options.players))
            await loader.load(BOARD.id, period, players, [])
        finally:
            await loader.close()
        usernames = await leaders(redis.url, period)
        per_write = await commands_per_write(redis.url, period, usernames)
        print(f"one increment = {per_write:.1f} Redis commands (script and publish)", flush=True)
        results: list[Result] = []
        for writes in (0.0, options.writes):
            for cached in (False, True):
                print(
                    f"store, cache {'on' if cached else 'off'}, {writes:.0f} writes/s", flush=True
                )
                results.append(
                    await store_run(
                        redis,
                        period,
                        options,
                        cached=cached,
                        writes=writes,
                        usernames=usernames,
                        per_write=per_write,
                    )
                )
        if options.http:
            for writes in (0.0, options.writes):
                for staleness_ms in (0, round(STALENESS_SECONDS * 1000)):
                    print(f"http, cache {staleness_ms} ms, {writes:.0f} writes/s", flush=True)
                    results.append(
                        await http_run(
                            redis,
                            directory,
                            period,
                            options,
                            staleness_ms=staleness_ms,
                            writes=writes,
                            usernames=usernames,
                            per_write=per_write,
                        )
                    )
        print()
        print(table(results, options.readers))
    finally:
        await redis.stop()
        remove_directory(directory)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point."""
    options = parse(sys.argv[1:] if argv is None else argv)
    try:
        uvloop.run(run(options))
    except KeyboardInterrupt:
        return 130
    finally:
        stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
