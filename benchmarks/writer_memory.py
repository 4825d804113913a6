"""Redis memory and CPU of idempotency per writer (writerId + sequence, issue 15).

    .venv/bin/python -m benchmarks.writer_memory [--writers 10000] [--calls 2000]

Starts a private Redis. Memory: `--writers` writers each make one call into one board
period; prints `MEMORY USAGE` of the period's writers hash over the writers it holds
(bytes per writer entry: a 16-character writer id and its last sequence, ~10^12). CPU: the
same increments sent three ways, in the same run, and Redis's own time inside EVALSHA
(INFO commandstats) per increment: with generated ids (nothing remembered), with a client
eventId each (uuid4: checked and stored per increment), and as writers' calls (one
writerId + sequence per call: checked and stored per call), for calls of 1 and of 100
increments.
"""

from __future__ import annotations

import argparse
import dataclasses
import uuid
from dataclasses import dataclass
from datetime import timedelta

import redis.asyncio as redis_asyncio

from benchmarks.processes import run_on_private_redis
from benchmarks.redis_cost import evalsha_stats
from store.boards import Board, ResetPeriod
from store.models import ScoreIncrement
from store.redis import RedisRankingStore

BOARD = "board"
PERIOD = "2026-05"
PLAYERS = 100_000
FIRST_SEQUENCE = 1_000_000_000_000
"""Sequences of a writer that has made a trillion calls: 13 digits stored per entry."""
CALL_SIZES = (1, 100)
ROUNDS = 5
WAYS = ("generated ids", "client eventIds", "writerId + sequence")


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", type=int, default=10_000)
    parser.add_argument("--calls", type=int, default=2_000, help="calls per way and call size")
    return parser.parse_args()


def writer_id(number: int) -> str:
    """A 16-character writer id, as a game server's might be."""
    return f"game-server-{number:05d}"


@dataclass(frozen=True, slots=True, kw_only=True)
class WriterFigures:
    """What one run measured."""

    writers: int
    writers_bytes: int
    """`MEMORY USAGE` of the board period's writers hash holding `writers` entries."""
    redis_us: dict[tuple[str, int], float]
    """Redis µs per increment by (way, increments per call)."""

    @property
    def bytes_per_writer(self) -> float:
        """Bytes per writer entry."""
        return self.writers_bytes / self.writers


async def writer_figures(url: str, writers: int, calls: int) -> WriterFigures:
    """Measure as the module docstring says, on the Redis at `url` (keys under `writers:`,
    deleted after)."""
    store = RedisRankingStore.from_url(
        url,
        key_prefix="writers",
        boards=[Board(BOARD, ResetPeriod.MONTHLY)],
        retention=timedelta(days=1),
    )
    client = redis_asyncio.Redis.from_url(url)
    await store.load(BOARD, PERIOD, ((f"player{i:06d}", i) for i in range(PLAYERS)), [])
    counter = iter(range(10**12))

    def increment(way: str = WAYS[0]) -> ScoreIncrement:
        number = next(counter)
        return ScoreIncrement(
            board=BOARD,
            period=PERIOD,
            username=f"player{number % PLAYERS:06d}",
            delta=1,
            event_id=str(uuid.uuid4()) if way == WAYS[1] else f"~{uuid.uuid4().hex}",
            client_event_id=way == WAYS[1],
        )

    try:
        # Memory: each writer's one call, 500 calls per script call (as merged calls go).
        for start in range(0, writers, 500):
            await store.increment(
                [
                    dataclasses.replace(
                        increment(),
                        writer_id=writer_id(number),
                        sequence=FIRST_SEQUENCE + number,
                        call=number + 1,
                    )
                    for number in range(start, min(writers, start + 500))
                ]
            )
        key = f"writers:{{{BOARD}|{PERIOD}}}:writers"
        held = int(await client.hlen(key))
        assert held == writers, (held, writers)
        writers_bytes = int(await client.memory_usage(key, samples=0) or 0)

        # The three ways take turns, round after round, in a rotating order: a machine
        # busy with something else slows each of them alike.
        spent: dict[tuple[str, int], float] = dict.fromkeys(
            ((way, size) for size in CALL_SIZES for way in WAYS), 0.0
        )
        sequences = iter(range(FIRST_SEQUENCE * 2, FIRST_SEQUENCE * 3))
        for round_number in range(ROUNDS):
            for size in CALL_SIZES:
                # Each round in another order: none always goes first (or last).
                shift = round_number % len(WAYS)
                for way in WAYS[shift:] + WAYS[:shift]:
                    before = await evalsha_stats(client)
                    for _ in range(max(1, calls // size // ROUNDS)):
                        batch = [increment(way) for _ in range(size)]
                        if way == WAYS[2]:
                            sequence = next(sequences)
                            batch = [
                                dataclasses.replace(
                                    item, writer_id=writer_id(sequence % writers), sequence=sequence
                                )
                                for item in batch
                            ]
                        await store.increment(batch)
                    after = await evalsha_stats(client)
                    spent[(way, size)] += after[1] - before[1]
        redis_us = {
            (way, size): micros / (max(1, calls // size // ROUNDS) * ROUNDS * size)
            for (way, size), micros in spent.items()
        }
        async for stale in client.scan_iter(match="writers:*"):
            await client.delete(stale)
    finally:
        await client.aclose()
        await store.close()
    return WriterFigures(writers=writers, writers_bytes=writers_bytes, redis_us=redis_us)


async def measure(url: str, options: argparse.Namespace) -> None:
    """Measure and print the table."""
    figures = await writer_figures(url, options.writers, options.calls)
    print(f"{figures.writers:,} writers in one board period")
    print("| measure | value |")
    print("| --- | ---: |")
    entry = "bytes per writer entry (16-char id, 13-digit sequence)"
    print(f"| {entry} | {figures.bytes_per_writer:.1f} |")
    for (way, size), micros in figures.redis_us.items():
        print(f"| Redis µs per increment, {way}, {size} per call | {micros:.2f} |")


def main() -> None:
    """Start a private Redis, measure, stop it."""
    run_on_private_redis(measure, arguments())


if __name__ == "__main__":
    main()
