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
import asyncio
import uuid
from datetime import timedelta

import redis.asyncio as redis_asyncio

from benchmarks.processes import private_redis
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


async def measure(url: str, options: argparse.Namespace) -> None:
    clock = SimulatedClock()
    window = options.window_seconds
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
    seconds_per_batch = BATCH / options.rate

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

    increments, generated_us = await one_window(client_ids=False)
    # Measure mid-bucket, where the buckets hold 1.5 windows of ids (1 to 2 at the extremes).
    clock.now += window / 2
    print(f"window {window:,} s, {options.rate:,} ids per simulated second")
    print("| measure | value |")
    print("| --- | ---: |")
    held = []
    client_us = 0.0
    for window_number in (1, 2, 3):
        _, spent = await one_window(client_ids=True)
        client_us += spent
        # Redis drops a bucket by its own clock; the simulated one moved on: drop what a
        # live Redis would have dropped by now (buckets older than the one before).
        current = int(clock.now * 1000) // (window * 1000)
        async for key in client.scan_iter(match="ids:*eventids:*"):
            if int(key.rsplit(b":", 1)[1]) < current - 1:
                await client.delete(key)
        total, ids = await event_id_bytes(client)
        held.append(total)
        print(f"| after {window_number} window(s): ids held | {ids:,} |")
        print(f"| after {window_number} window(s): eventId memory | {total / 2**20:,.1f} MiB |")
        if window_number == 1:
            print(f"| bytes per remembered id (uuid4 + fingerprint) | {total / ids:,.1f} |")
    print(f"| memory after 3 windows / after 2 windows (flat = 1.0) | {held[2] / held[1]:.2f} |")
    per_client = client_us / (3 * increments)
    per_generated = generated_us / increments
    print(f"| Redis µs per increment, generated ids (none stored) | {per_generated:.2f} |")
    print(f"| Redis µs per increment, client eventIds (checked, stored) | {per_client:.2f} |")
    print(f"| ratio client / generated | {per_client / per_generated:.2f} |")
    await client.aclose()
    await store.close()


def main() -> None:
    """Start a private Redis, measure, stop it."""
    options = arguments()

    async def run() -> None:
        async with private_redis() as redis:
            await measure(redis.url, options)

    asyncio.run(run())


if __name__ == "__main__":
    main()
