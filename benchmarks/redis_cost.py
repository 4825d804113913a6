"""What one Redis node can serve: server-side CPU per script call, from INFO commandstats.

    .venv/bin/python -m benchmarks.redis_cost [--players 1000000] [--calls 20000]

Starts a private Redis, loads `--players` players into one board period, then runs
`--calls` of each operation through `RedisRankingStore` (32 at a time, or one at a
time) and reads Redis's own accounting of the time spent inside EVALSHA. One Redis node
runs scripts on one thread, so 1e6 / (µs per request) is the ceiling of that operation on
one node (one shard), whatever the clients: the figure docs/scaling.md multiplies out.
Concurrent increments share script calls (store/redis/coalescing.py), so the time is divided by
the requests made, and the script calls they took are shown beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta

import redis.asyncio as redis_asyncio

from benchmarks.processes import run_on_private_redis
from store.boards import Board, ResetPeriod
from store.models import ScoreIncrement
from store.redis import RedisRankingStore

PERIOD = "2026-05"


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--players", type=int, default=1_000_000)
    parser.add_argument("--calls", type=int, default=20_000)
    return parser.parse_args()


async def evalsha_stats(client: redis_asyncio.Redis) -> tuple[int, float]:
    """(calls, total microseconds) of EVALSHA so far."""
    stats = await client.info("commandstats")
    entry = stats.get("cmdstat_evalsha", {"calls": 0, "usec": 0})
    return int(entry["calls"]), float(entry["usec"])


async def measure(url: str, options: argparse.Namespace) -> None:
    store = RedisRankingStore.from_url(
        url,
        key_prefix="cost",
        boards=[Board("board", ResetPeriod.MONTHLY)],
        retention=timedelta(days=1),
    )
    client = redis_asyncio.Redis.from_url(url)
    rng = random.Random(11)
    usernames = [f"player{index:07d}" for index in range(options.players)]
    await store.load("board", PERIOD, ((name, rng.randrange(1_000_000)) for name in usernames), [])

    def pick() -> str:
        return usernames[rng.randrange(len(usernames))]

    def fresh_increment() -> ScoreIncrement:
        return ScoreIncrement(
            board="board",
            period=PERIOD,
            username=pick(),
            delta=3,
            event_id=f"~{uuid.uuid4().hex}",
            client_event_id=False,
        )

    async def increment() -> object:
        return await store.increment([fresh_increment()])

    async def batch() -> object:
        return await store.increment([fresh_increment() for _ in range(500)])

    # name: (operation, events per request, requests at a time)
    operations: dict[str, tuple[Callable[[], Awaitable[object]], int, int]] = {
        "incrementScore (1 increment), one at a time": (increment, 1, 1),
        "incrementScore (1 increment), 32 at a time": (increment, 1, 32),
        "incrementScores (500 increments)": (batch, 500, 32),
        "topPlayers(10)": (lambda: store.top("board", PERIOD, 10, 0), 1, 32),
        "player": (lambda: store.player("board", PERIOD, pick()), 1, 32),
        "neighborhood(5)": (lambda: store.neighborhood("board", PERIOD, pick(), 5), 1, 32),
    }
    print(f"{options.players:,} players in one sorted set")
    print(
        "| operation | requests | script calls | µs of Redis CPU per request "
        "| requests/s one node can run | events/s |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, (operation, events, at_once) in operations.items():
        requests = max(1, options.calls // events)
        before = await evalsha_stats(client)
        for start in range(0, requests, at_once):
            await asyncio.gather(*(operation() for _ in range(min(at_once, requests - start))))
        after = await evalsha_stats(client)
        per_request = (after[1] - before[1]) / requests
        rate = 1e6 / per_request
        print(
            f"| {name} | {requests:,} | {after[0] - before[0]:,} | {per_request:,.1f} "
            f"| {rate:,.0f} | {rate * events:,.0f} |",
            flush=True,
        )
    await increment_costs(store, client, fresh_increment, options)
    await client.aclose()
    await store.close()


async def increment_costs(
    store: RedisRankingStore,
    client: redis_asyncio.Redis,
    fresh_increment: Callable[[], ScoreIncrement],
    options: argparse.Namespace,
    rounds: int = 3,
) -> dict[tuple[bool, bool], float]:
    """Redis µs per increment of `incrementScores` x500 with and without `rank` selected,
    with and without an instance watching the board (store/redis/watchers.py): the four
    cases interleaved `rounds` times (the machine's drift hits each alike), the median of
    each printed, and returned by (ranks, watched)."""
    requests = max(1, options.calls // 500)
    marker = "cost:watched:board"
    samples: dict[tuple[bool, bool], list[float]] = {}
    for _ in range(rounds):
        for watched in (False, True):
            if watched:
                await store.watch("board")
            else:
                store.unwatch("board")
                await client.delete(marker)
            for ranks in (True, False):
                before = await evalsha_stats(client)
                for start in range(0, requests, 32):
                    await asyncio.gather(
                        *(
                            store.increment([fresh_increment() for _ in range(500)], ranks=ranks)
                            for _ in range(min(32, requests - start))
                        )
                    )
                after = await evalsha_stats(client)
                samples.setdefault((ranks, watched), []).append(
                    (after[1] - before[1]) / (requests * 500)
                )
    store.unwatch("board")
    costs = {case: statistics.median(values) for case, values in samples.items()}
    print()
    print(
        f"| incrementScores x500 ({requests:,} calls x {rounds}) | rank selected "
        "| board watched | µs of Redis CPU per increment (median; range) |"
    )
    print("| --- | --- | --- | ---: |")
    for (ranks, watched), cost in costs.items():
        low, high = min(samples[ranks, watched]), max(samples[ranks, watched])
        print(
            f"| | {'yes' if ranks else 'no'} | {'yes' if watched else 'no'} "
            f"| {cost:.2f} ({low:.2f}-{high:.2f}) |",
            flush=True,
        )
    return costs


def main() -> None:
    """Start a private Redis, measure, stop it."""
    run_on_private_redis(measure, arguments())


if __name__ == "__main__":
    main()
