"""Redis bytes per player and per remembered client eventId (issue #15, "Memory per player").

Measured on the benchmark's private Redis, under a key prefix of its own that is deleted
afterwards, as the growth of Redis's memory:

- per player: one board period loaded with N players through the store's public `load`
  (one sorted-set entry each; usernames `player0000001`, 13 bytes);
- per eventId: N increments with client eventIds through the store's public `increment`
  (the path a request takes, whatever structure the store keeps its ids in), spread over
  1,000 players already on the board so that the ranking itself does not grow; ids as a
  client would make them (a 36-character UUID) and shorter ones (16 characters);
- the same ids in hashes of 100 (listpacks), written directly: what that layout would
  give the store;
- small boards: 1,000 players with Redis's default `zset-max-listpack-entries` (128) and
  with it raised to 1,024, which keeps such a board in a listpack. That threshold is the
  Redis server's configuration (docs/scaling.md says when to raise it); only this private
  server's is changed, and put back.

Each figure is the sum of `MEMORY USAGE` over the prefix's keys (exact, `SAMPLES 0`), with
INFO's `used_memory` growth beside it in the details (allocator overhead included).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta

import redis.asyncio as redis_asyncio

from benchmarks.bench import Bench, Row
from store.boards import FOREVER, Board, ResetPeriod
from store.models import ScoreIncrement
from store.redis import RedisRankingStore

PREFIX = "lbmemory"
ID_PLAYERS = 1_000
"""Players the eventId increments are spread over (already on the board)."""
BATCH = 500
ID_BUCKET = 100
"""Ids per hash in the bucketed layout: under Redis's default hash-max-listpack-entries."""
SMALL_BOARD = 1_000
LISTPACK_ENTRIES = 1_024
MIB = 1024 * 1024


async def prefix_bytes(client: redis_asyncio.Redis, pattern: str) -> int:
    """Sum of MEMORY USAGE (every element counted) over the keys matching `pattern`."""
    total = 0
    async for key in client.scan_iter(match=pattern, count=1_000):
        usage = await client.memory_usage(key, samples=0)
        total += int(usage or 0)
    return total


async def used_memory(client: redis_asyncio.Redis) -> int:
    """INFO memory's used_memory."""
    return int((await client.info("memory"))["used_memory"])


async def delete_prefix(client: redis_asyncio.Redis, pattern: str) -> None:
    """Delete every key matching `pattern`, freed before this returns (DEL, not UNLINK: the
    next measurement's `used_memory` must not include memory still waiting to be freed)."""
    async for key in client.scan_iter(match=pattern, count=1_000):
        await client.delete(key)


class Meter:
    """Memory growth of what one step stores under its own key prefix."""

    def __init__(self, client: redis_asyncio.Redis, prefix: str) -> None:
        self.client = client
        self.pattern = prefix + "*"
        self.keys_before = 0
        self.used_before = 0

    async def start(self) -> None:
        """Read the starting point."""
        self.keys_before = await prefix_bytes(self.client, self.pattern)
        self.used_before = await used_memory(self.client)

    async def grown(self) -> tuple[int, int]:
        """(MEMORY USAGE growth of the keys, used_memory growth) since `start`."""
        keys = await prefix_bytes(self.client, self.pattern) - self.keys_before
        return keys, await used_memory(self.client) - self.used_before


def _store(url: str, prefix: str, board: str) -> RedisRankingStore:
    return RedisRankingStore.from_url(
        url,
        key_prefix=prefix,
        boards=[Board(board, ResetPeriod.NEVER)],
        # A NEVER board's keys never expire; the prefix is deleted after each measurement.
        retention=timedelta(days=1),
    )


async def players_bytes(url: str, client: redis_asyncio.Redis, count: int) -> tuple[int, int]:
    """(key bytes, used_memory bytes) that `count` players of one board period take."""
    prefix = f"{PREFIX}-players-{count}"
    store = _store(url, prefix, "board")
    meter = Meter(client, prefix)
    try:
        await meter.start()
        totals = ((f"player{index:07d}", index * 7 % 1_000_003) for index in range(count))
        await store.load("board", FOREVER, totals, [])
        return await meter.grown()
    finally:
        await store.close()
        await delete_prefix(client, prefix + "*")


async def event_id_bytes(
    url: str, client: redis_asyncio.Redis, count: int, make_id: Callable[[int], str], label: str
) -> tuple[int, int]:
    """(key bytes, used_memory bytes) that `count` remembered client eventIds take."""
    prefix = f"{PREFIX}-ids-{label}"
    store = _store(url, prefix, "board")
    usernames = [f"player{index:07d}" for index in range(ID_PLAYERS)]
    try:
        await store.load("board", FOREVER, ((name, 1) for name in usernames), [])
        meter = Meter(client, prefix)
        await meter.start()
        for start in range(0, count, BATCH):
            await store.increment(
                [
                    ScoreIncrement(
                        board="board",
                        period=FOREVER,
                        username=usernames[index % ID_PLAYERS],
                        delta=1,
                        event_id=make_id(index),
                        client_event_id=True,
                    )
                    for index in range(start, min(count, start + BATCH))
                ]
            )
        return await meter.grown()
    finally:
        await store.close()
        await delete_prefix(client, prefix + "*")


async def small_board_bytes(url: str, client: redis_asyncio.Redis, listpack: int | None) -> int:
    """Key bytes per player of a SMALL_BOARD-player board, with `zset-max-listpack-entries`
    set to `listpack` on this (private) server for the measurement, or left as it is."""
    setting = "zset-max-listpack-entries"
    before = str((await client.config_get(setting))[setting])
    if listpack is not None:
        await client.config_set(setting, listpack)
    try:
        keys, _used = await players_bytes(url, client, SMALL_BOARD)
    finally:
        await client.config_set(setting, before)
    return keys


async def bucketed_id_bytes(client: redis_asyncio.Redis, count: int, per_bucket: int) -> int:
    """Key bytes of `count` 36-character ids, each bound to a fingerprint as the store binds
    them, in hashes of `per_bucket` ids: small enough to stay listpacks with Redis's default
    `hash-max-listpack-entries` (128). Raw HSETs, not the store's path: what such a layout
    would give (the store's own layout is not this benchmark's to choose)."""
    prefix = f"{PREFIX}-bucketed"
    try:
        pipe = client.pipeline(transaction=False)
        for index in range(count):
            pipe.hset(f"{prefix}:{index // per_bucket}", _uuid(index), "1:player0000001")
            if len(pipe) >= 5_000:
                await pipe.execute()
        await pipe.execute()
        return await prefix_bytes(client, prefix + "*")
    finally:
        await delete_prefix(client, prefix + "*")


def _uuid(_index: int) -> str:
    return str(uuid.uuid4())


def _short(index: int) -> str:
    return f"{index:016x}"


async def redis_memory(bench: Bench, context: object) -> list[Row]:
    """Redis bytes per player (1M players; 100k in --quick) and per remembered client
    eventId (1M ids; 100k in --quick), and what a listpack gives a small board."""
    from benchmarks.scenarios import say  # here: scenarios.py registers this scenario

    count = bench.options.size(100_000, 1_000_000)
    url = bench.redis.url
    client = redis_asyncio.Redis.from_url(url)
    rows: list[Row] = []
    try:
        keys, used = await players_bytes(url, client, count)
        per = keys / count
        say(f"  {per:.1f} B per player ({count:,} players; used_memory {used / count:.1f} B)")
        rows.append(
            Row(
                scenario="redis memory",
                measured=f"Redis bytes per player (sorted-set entry, 13-byte usernames), {count:,}",
                value=f"{per:.1f} B ({per * 1_000_000 / MIB:.0f} MiB per 1M players)",
                unit="",
                details={"players": count, "key_bytes": keys, "used_memory_bytes": used},
            )
        )
        for label, make_id, length in (("uuid", _uuid, 36), ("short", _short, 16)):
            keys, used = await event_id_bytes(url, client, count, make_id, label)
            per = keys / count
            say(
                f"  {per:.1f} B per remembered {length}-char eventId "
                f"(used_memory {used / count:.1f} B)"
            )
            rows.append(
                Row(
                    scenario="redis memory",
                    measured=f"Redis bytes per remembered eventId ({length} chars), {count:,} ids",
                    value=f"{per:.1f} B ({per * 1_000_000 / MIB:.0f} MiB per 1M ids)",
                    unit="",
                    details={
                        "ids": count,
                        "id_length": length,
                        "key_bytes": keys,
                        "used_memory_bytes": used,
                    },
                )
            )
        bucketed = await bucketed_id_bytes(client, count, ID_BUCKET) / count
        say(f"  {bucketed:.1f} B per 36-char eventId in {ID_BUCKET}-id listpack hashes")
        rows.append(
            Row(
                scenario="redis memory",
                measured=(
                    f"bytes per 36-char eventId + fingerprint in hashes of {ID_BUCKET} "
                    "(listpacks; raw HSET, a layout the store could take)"
                ),
                value=f"{bucketed:.1f} B ({bucketed * 1_000_000 / MIB:.0f} MiB per 1M ids)",
                unit="",
                details={"ids": count, "per_bucket": ID_BUCKET, "bytes_per_id": bucketed},
            )
        )
        default = await small_board_bytes(url, client, None) / SMALL_BOARD
        packed = await small_board_bytes(url, client, LISTPACK_ENTRIES) / SMALL_BOARD
        say(
            f"  {SMALL_BOARD:,}-player board: {default:.1f} B per player, "
            f"{packed:.1f} as a listpack"
        )
        rows.append(
            Row(
                scenario="redis memory",
                measured=(
                    f"bytes per player of a {SMALL_BOARD:,}-player board, default Redis / "
                    f"zset-max-listpack-entries {LISTPACK_ENTRIES:,} (server config)"
                ),
                value=f"{default:.1f} B / {packed:.1f} B",
                unit="",
                details={"default_bytes_per_player": default, "listpack_bytes_per_player": packed},
            )
        )
        # The idempotency window: memory flat after windows of constant load (the window,
        # not the period, bounds it), and the check's Redis CPU (benchmarks/event_id_memory.py).
        from benchmarks.event_id_memory import window_figures

        rate = bench.options.size(20, 100)
        figures = await window_figures(url, rate, 1_000)
        say(
            f"  eventId window: {figures.bytes_per_id:.1f} B per id, memory after 3 windows / "
            f"after 2 = {figures.flat:.2f}; Redis {figures.redis_us_client:.1f} µs per "
            f"increment with client ids, {figures.redis_us_generated:.1f} without"
        )
        rows.append(
            Row(
                scenario="redis memory",
                measured=(
                    f"eventId memory after 3 windows / after 2, constant load ({rate} ids per "
                    f"simulated s, window 1,000 s; {figures.bytes_per_id:.1f} B per id)"
                ),
                value=f"{figures.flat:.2f} (flat = 1.00)",
                unit="",
                target="flat: 0.95 to 1.05",
                passed=0.95 <= figures.flat <= 1.05,
                details={
                    "ids_held": list(figures.ids_held),
                    "bytes_held": list(figures.bytes_held),
                    "redis_us_per_increment_client_ids": figures.redis_us_client,
                    "redis_us_per_increment_generated_ids": figures.redis_us_generated,
                },
            )
        )
        # Idempotency per writer: bytes per writer entry, and Redis CPU per increment of a
        # writer's call against a client eventId each and against neither
        # (benchmarks/writer_memory.py).
        from benchmarks.writer_memory import CALL_SIZES, WAYS, writer_figures

        writer_count = 10_000
        writers = await writer_figures(url, writer_count, bench.options.size(5_000, 20_000))
        say(f"  {writers.bytes_per_writer:.1f} B per writer entry ({writer_count:,} writers)")
        rows.append(
            Row(
                scenario="redis memory",
                measured=(
                    f"Redis bytes per writer entry (16-char writerId, 13-digit sequence), "
                    f"{writer_count:,} writers in one board period"
                ),
                value=f"{writers.bytes_per_writer:.1f} B",
                unit="",
                details={"writers": writer_count, "key_bytes": writers.writers_bytes},
            )
        )
        for size in CALL_SIZES:
            per_way = [writers.redis_us[(way, size)] for way in WAYS]
            say(
                f"  Redis µs per increment, {size} per call: "
                + ", ".join(
                    f"{way} {micros:.1f}" for way, micros in zip(WAYS, per_way, strict=True)
                )
            )
            rows.append(
                Row(
                    scenario="redis memory",
                    measured=(
                        f"Redis µs per increment, {size} per call: generated ids / client "
                        "eventIds / writerId + sequence"
                    ),
                    value=" / ".join(f"{micros:.1f}" for micros in per_way),
                    unit="µs",
                    details={way: micros for way, micros in zip(WAYS, per_way, strict=True)},
                )
            )
    finally:
        await client.aclose()
    return rows
