"""Sharded vs unsharded boards, on one Redis and on a Redis Cluster: store-level rates.

    .venv/bin/python -m benchmarks.sharding [--players 100000] [--shards 8] [--seconds 5]
        [--concurrency 64]

Starts its own Redis and a 3-master Redis Cluster (private ports, temp directories),
loads the same players into a board with 1 and with `--shards` sorted sets on each,
then drives `RedisRankingStore` directly from `--concurrency` tasks per operation:
single increments, topPlayers(10), player, neighborhood(5). Prints operations/s and
latency percentiles, with the ratio of each sharded figure to the unsharded one on the
same backend, and the Redis CPU each operation cost (command time from INFO commandstats,
summed over the nodes, and on the busiest node: what limits a board's rate).
Store-level: no HTTP or GraphQL, so the figures show what sharding costs
in round trips and Redis work, not the service's request ceiling.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta

import redis.asyncio as redis_asyncio

from benchmarks.processes import private_redis
from store.boards import Board, ResetPeriod
from store.models import ScoreIncrement
from store.redis import RedisRankingStore
from tests.support.redis_cluster import PrivateRedisCluster

PERIOD = "2026-05"


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--players", type=int, default=100_000)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=64)
    return parser.parse_args()


async def drive(
    operation: Callable[[int], Awaitable[object]], seconds: float, concurrency: int
) -> tuple[float, list[float]]:
    """Run `operation` from `concurrency` loops for `seconds`: (ops/s, latencies in ms)."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def loop(worker: int) -> None:
        count = 0
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            await operation(worker * 1_000_003 + count)
            latencies.append((time.perf_counter() - started) * 1000)
            count += 1

    started = time.perf_counter()
    await asyncio.gather(*(loop(worker) for worker in range(concurrency)))
    return len(latencies) / (time.perf_counter() - started), latencies


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


Figures = tuple[float, float, float, float, float]
"""ops/s, p50 ms, p99 ms, Redis µs per operation (all nodes), busiest node's µs per op."""


async def redis_microseconds(nodes: list[str]) -> list[float]:
    """Microseconds each node has spent running commands so far (INFO commandstats:
    scripts and plain commands, not the INFO that asks)."""
    spent = []
    for url in nodes:
        async with redis_asyncio.Redis.from_url(url) as client:
            stats = await client.info("commandstats")
        spent.append(
            sum(
                float(entry["usec"])
                for name, entry in stats.items()
                if not name.startswith(("cmdstat_info", "cmdstat_cluster"))
            )
        )
    return spent


async def measure(
    name: str,
    store: RedisRankingStore,
    nodes: list[str],
    players: int,
    options: argparse.Namespace,
) -> dict[str, Figures]:
    """Load the players, then each operation in turn."""
    rng = random.Random(7)
    totals = [(f"player{index:07d}", rng.randrange(0, 1_000_000)) for index in range(players)]
    await store.load("board", PERIOD, totals, [])
    usernames = [username for username, _ in totals]

    def pick(seed: int) -> str:
        return usernames[(seed * 7919) % len(usernames)]

    async def increment(seed: int) -> object:
        return await store.increment(
            [
                ScoreIncrement(
                    board="board",
                    period=PERIOD,
                    username=pick(seed),
                    delta=3,
                    event_id=f"~{uuid.uuid4().hex}",
                    client_event_id=False,
                )
            ]
        )

    operations: dict[str, Callable[[int], Awaitable[object]]] = {
        "incrementScore": increment,
        "topPlayers(10)": lambda seed: store.top("board", PERIOD, 10, 0),
        "player": lambda seed: store.player("board", PERIOD, pick(seed)),
        "neighborhood(5)": lambda seed: store.neighborhood("board", PERIOD, pick(seed), 5),
    }
    results = {}
    for operation_name, operation in operations.items():
        before = await redis_microseconds(nodes)
        rate, latencies = await drive(operation, options.seconds, options.concurrency)
        after = await redis_microseconds(nodes)
        spent = [end - start for start, end in zip(before, after, strict=True)]
        count = len(latencies)
        results[operation_name] = (
            rate,
            statistics.median(latencies),
            percentile(latencies, 0.99),
            sum(spent) / count,
            max(spent) / count,
        )
        print(f"  {name:<26} {operation_name:<16} {rate:>9,.0f}/s", flush=True)
    return results


def main() -> None:
    """Start the servers, measure, print the table, stop the servers."""
    options = arguments()
    cluster = PrivateRedisCluster(masters=3)

    async def run() -> None:
        async with private_redis() as single:
            nodes = [f"redis://{node.address}/0" for node in cluster.nodes]
            await measure_all(options, single.url, cluster.url(), nodes)

    try:
        cluster.start()
        asyncio.run(run())
    finally:
        cluster.cleanup()


async def measure_all(
    options: argparse.Namespace, redis_url: str, cluster_url: str, cluster_nodes: list[str]
) -> None:
    """Every backend, unsharded then sharded."""
    backends = {
        "one Redis": (redis_url, False, [redis_url]),
        "cluster, 3 masters": (cluster_url, True, cluster_nodes),
    }
    table: list[tuple[str, str, str, Figures, float]] = []
    for backend, (url, is_cluster, nodes) in backends.items():
        baseline: dict[str, Figures] = {}
        for shards in (1, options.shards):
            store = RedisRankingStore.from_url(
                url,
                key_prefix=f"bench{shards}",
                boards=[Board("board", ResetPeriod.MONTHLY, shards=shards)],
                retention=timedelta(days=1),
                cluster=is_cluster,
            )
            label = f"{backend}, {shards} shard{'s' if shards > 1 else ''}"
            try:
                results = await measure(label, store, nodes, options.players, options)
            finally:
                await store.close()
            for operation, figures in results.items():
                ratio = figures[0] / baseline[operation][0] if baseline else 1.0
                table.append((backend, f"{shards}", operation, figures, ratio))
            if not baseline:
                baseline = results
    print()
    print(
        f"{options.players:,} players, {options.concurrency} concurrent tasks, "
        f"{options.seconds:.0f} s per operation"
    )
    print(
        "| backend | shards | operation | ops/s (client) | p50 ms | p99 ms | vs 1 shard "
        "| Redis µs/op, all nodes | busiest node µs/op |\n"
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    )
    for backend, shards, operation, (rate, p50, p99, spent, busiest), ratio in table:
        print(
            f"| {backend} | {shards} | {operation} | {rate:,.0f} | {p50:.2f} | {p99:.2f} "
            f"| {ratio:.2f}x | {spent:.1f} | {busiest:.1f} |"
        )


if __name__ == "__main__":
    main()
