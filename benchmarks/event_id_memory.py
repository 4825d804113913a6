"""Redis memory and CPU of client eventIds under the idempotency window (issue 15).

    .venv/bin/python -m benchmarks.event_id_memory [--rate 100] [--window-seconds 1000]

Starts a private Redis and writes batches of 500 increments with uuid4 eventIds into a
board that never resets, at `--rate` ids per simulated second, on a simulated clock (the
store's injected clock), for three windows. Prints the bytes per remembered id
(`MEMORY USAGE` of the event-id buckets over the ids they hold), the eventId memory after
one and after two windows of constant load (flat: the window, not the period, bounds it),
and Redis's own CPU per increment (INFO commandstats) with client eventIds against
generated ids (none stored), measured in the same run.
"""

from __future__ import annotations

import argparse
import uuid
from dataclasses import dataclass
from datetime import timedelta

import redis.asyncio as redis_asyncio

from benchmarks.processes import run_on_private_redis
from benchmarks.redis_cost import evalsha_stats
from store.boards import Board, ResetPeriod
from store.models import ScoreIncrement
from store.redis import RedisRankingStore

BATCH = 500
BOARD = "forever"
PERIOD = "all"


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=100, help="ids per simulated second")
    parser.add_argument("--window-seconds", type=int, default=1_000)
    return parser.parse_args()


class SimulatedClock:
    """Unix seconds that move only when the benchmark says so."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


async def event_id_bytes(client: redis_asyncio.Redis) -> tuple[int, int]:
    """(bytes, ids) of every event-id bucket in Redis."""
    total = ids = 0
    async for key in client.scan_iter(match="ids:*eventids*"):
        total += int(await client.memory_usage(key, samples=0) or 0)
        ids += int(await client.hlen(key))
    return total, ids


@dataclass(frozen=True, slots=True, kw_only=True)
class WindowFigures:
    """What one run measured."""

    window_seconds: int
    rate: int
    ids_held: tuple[int, int, int]
    """Ids in the buckets after one, two and three windows of constant load."""
    bytes_held: tuple[int, int, int]
    """`MEMORY USAGE` of the buckets at the same moments."""
    redis_us_generated: float
    """Redis µs per increment with generated ids (none stored)."""
    redis_us_client: float
    """Redis µs per increment with client eventIds (checked and stored)."""

    @property
    def bytes_per_id(self) -> float:
        """Bytes per remembered id (uuid4 and its fingerprint), after one window."""
        return self.bytes_held[0] / self.ids_held[0]

    @property
    def flat(self) -> float:
        """Memory after three windows over memory after two (flat: 1.0)."""
        return self.bytes_held[2] / self.bytes_held[1]


async def window_figures(url: str, rate: int, window: int) -> WindowFigures:
    """Write three windows of client eventIds at `rate` per simulated second into a board
    that never resets (after one of generated ids), measuring as the docstring says."""
    clock = SimulatedClock()
    store = RedisRankingStore.from_url(
        url,
        key_prefix="ids",
        boards=[Board(BOARD, ResetPeriod.NEVER)],
        retention=timedelta(days=1),
        event_id_window=timedelta(seconds=window),
        clock=clock,
    )
    client = redis_asyncio.Redis.from_url(url)
    await store.load(BOARD, PERIOD, [], [])
    seconds_per_batch = BATCH / rate

    def batch(number: int, client_ids: bool) -> list[ScoreIncrement]:
        return [
            ScoreIncrement(
                board=BOARD,
                period=PERIOD,
                username=f"player{(number * BATCH + index) % 100_000}",
                delta=1,
                event_id=str(uuid.uuid4()) if client_ids else f"~{uuid.uuid4().hex}",
                client_event_id=client_ids,
            )
            for index in range(BATCH)
        ]

    async def one_window(client_ids: bool) -> tuple[int, float]:
        """Write one window of load; (increments, µs of EVALSHA)."""
        before = await evalsha_stats(client)
        batches = int(window / seconds_per_batch)
        for number in range(batches):
            await store.increment(batch(number, client_ids))
            clock.now += seconds_per_batch
        after = await evalsha_stats(client)
        return batches * BATCH, after[1] - before[1]

    try:
        increments, generated_us = await one_window(client_ids=False)
        # Measured mid-bucket, where the buckets hold 1.5 windows of ids (1 to 2 at the
        # extremes).
        clock.now += window / 2
        held: list[tuple[int, int]] = []
        client_us = 0.0
        for _ in range(3):
            _, spent = await one_window(client_ids=True)
            client_us += spent
            # Redis drops a bucket by its own clock; the simulated one moved on: drop what
            # a live Redis would have dropped by now (buckets older than the one before).
            current = int(clock.now * 1000) // (window * 1000)
            async for key in client.scan_iter(match="ids:*eventids:*"):
                if int(key.rsplit(b":", 1)[1]) < current - 1:
                    await client.delete(key)
            total, ids = await event_id_bytes(client)
            held.append((ids, total))
        async for key in client.scan_iter(match="ids:*"):
            await client.delete(key)
    finally:
        await client.aclose()
        await store.close()
    return WindowFigures(
        window_seconds=window,
        rate=rate,
        ids_held=(held[0][0], held[1][0], held[2][0]),
        bytes_held=(held[0][1], held[1][1], held[2][1]),
        redis_us_generated=generated_us / increments,
        redis_us_client=client_us / (3 * increments),
    )


async def measure(url: str, options: argparse.Namespace) -> None:
    """Measure and print the table."""
    figures = await window_figures(url, options.rate, options.window_seconds)
    print(f"window {figures.window_seconds:,} s, {figures.rate:,} ids per simulated second")
    print("| measure | value |")
    print("| --- | ---: |")
    for number, (ids, total) in enumerate(
        zip(figures.ids_held, figures.bytes_held, strict=True), start=1
    ):
        print(f"| after {number} window(s): ids held | {ids:,} |")
        print(f"| after {number} window(s): eventId memory | {total / 2**20:,.1f} MiB |")
    print(f"| bytes per remembered id (uuid4 + fingerprint) | {figures.bytes_per_id:,.1f} |")
    print(f"| memory after 3 windows / after 2 windows (flat = 1.0) | {figures.flat:.2f} |")
    print(
        "| Redis µs per increment, generated ids (none stored) "
        f"| {figures.redis_us_generated:.2f} |"
    )
    print(
        "| Redis µs per increment, client eventIds (checked, stored) "
        f"| {figures.redis_us_client:.2f} |"
    )
    print(
        f"| ratio client / generated | {figures.redis_us_client / figures.redis_us_generated:.2f} |"
    )


def main() -> None:
    """Start a private Redis, measure, stop it."""
    run_on_private_redis(measure, arguments())


if __name__ == "__main__":
    main()
