"""Redis CPU per increment on a Redis Cluster: the spread write path, rank selected or not,
board watched or not, unsharded and sharded, this tree against a baseline tree.

    .venv/bin/python -m benchmarks.cluster_cost [--baseline DIR] [--players 100000]
        [--shards 4] [--calls 40] [--rounds 3]

Starts a private 3-master Redis Cluster, then runs one worker process per tree and
round, alternating (the machine's drift hits both alike): each worker loads `--players`
players into a board of 1 and of `--shards` sorted sets (under a key prefix of its own),
then sends `--calls` incrementScores x500 batches, 8 at a time, per case, and reports the
Redis CPU they took per increment, summed over the nodes: the redis-server processes' CPU
time (scripts, ZCOUNT rounds, EXISTS, SPUBLISH, and the network work around them), and
beside it the scripts' share (EVALSHA in INFO commandstats, wall-clock time inside Redis)
and the worker's own CPU (the store's client side: batches built, replies decoded, ranks
replayed, messages built).
`--baseline DIR` names a tree whose `store` package the baseline worker imports instead of
this one's (e.g. one made by `git archive <commit> store | tar -x -C DIR`); without it
only this tree runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import redis.asyncio as redis_asyncio

from benchmarks.processes import REPO, cpu_seconds
from tests.support.redis_cluster import PrivateRedisCluster

PERIOD = "2026-05"
BATCH = 500
AT_ONCE = 8


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path)
    parser.add_argument("--players", type=int, default=100_000)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    # Worker mode (internal): measure on these nodes under this prefix, print JSON.
    parser.add_argument("--worker-nodes", nargs="*")
    parser.add_argument("--worker-prefix")
    return parser.parse_args()


async def redis_microseconds(nodes: list[str]) -> tuple[float, float]:
    """(CPU µs the nodes' processes have used so far, µs of EVALSHA in their commandstats).

    The first is the figure: user + system time of each redis-server (/proc), which a busy
    machine does not inflate and which counts a command once (commandstats count a
    script's inner commands both on their own and inside EVALSHA, and time them on the
    wall clock); it includes the nodes' own upkeep (cluster bus, cron), small against
    the cases' seconds."""
    cpu = 0.0
    scripts = 0.0
    for url in nodes:
        async with redis_asyncio.Redis.from_url(url) as client:
            server = await client.info("server")
            stats = await client.info("commandstats")
        cpu += cpu_seconds(int(server["process_id"])) * 1e6
        scripts += float(stats.get("cmdstat_evalsha", {"usec": 0})["usec"])
    return cpu, scripts


async def work(options: argparse.Namespace) -> dict[str, float]:
    """Worker: every case once, µs per increment by case name."""
    # Imported here: the worker's `store` is the tree PYTHONPATH names first.
    from store.boards import Board, ResetPeriod
    from store.models import ScoreIncrement
    from store.redis import RedisRankingStore

    nodes: list[str] = options.worker_nodes
    rng = random.Random(5)
    usernames = [f"player{index:07d}" for index in range(options.players)]
    results: dict[str, float] = {}
    for shards in (1, options.shards):
        prefix = f"{options.worker_prefix}{shards}"
        store = RedisRankingStore.from_url(
            nodes[0],
            key_prefix=prefix,
            boards=[Board("board", ResetPeriod.MONTHLY, shards=shards)],
            retention=timedelta(days=1),
            cluster=True,
        )
        await store.load(
            "board", PERIOD, ((name, rng.randrange(1_000_000)) for name in usernames), []
        )

        def batch() -> list[ScoreIncrement]:
            return [
                ScoreIncrement(
                    board="board",
                    period=PERIOD,
                    username=usernames[rng.randrange(len(usernames))],
                    delta=3,
                    event_id=f"~{uuid.uuid4().hex}",
                    client_event_id=False,
                )
                for _ in range(BATCH)
            ]

        # Warm up (scripts loaded on every node, connections open), not measured.
        await asyncio.gather(*(store.increment(batch()) for _ in range(AT_ONCE)))
        for watched in (False, True):
            if watched:
                await store.watch("board")
            for ranks in (True, False):
                before = await redis_microseconds(nodes)
                client_before = time.process_time()
                for start in range(0, options.calls, AT_ONCE):
                    await asyncio.gather(
                        *(
                            store.increment(batch(), ranks=ranks)
                            for _ in range(min(AT_ONCE, options.calls - start))
                        )
                    )
                client = time.process_time() - client_before
                after = await redis_microseconds(nodes)
                name = f"{shards}|{'yes' if ranks else 'no'}|{'yes' if watched else 'no'}"
                increments = options.calls * BATCH
                results[name] = (after[0] - before[0]) / increments
                results[f"{name}|evalsha"] = (after[1] - before[1]) / increments
                results[f"{name}|client"] = client * 1e6 / increments
        store.unwatch("board")
        await store.close()
    return results


def run_worker(
    tree: Path, nodes: list[str], prefix: str, options: argparse.Namespace
) -> dict[str, float]:
    """One worker process importing `store` from `tree`; its results."""
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(dict.fromkeys([str(tree), str(REPO)]))
    command = [
        sys.executable,
        "-m",
        "benchmarks.cluster_cost",
        "--players",
        str(options.players),
        "--shards",
        str(options.shards),
        "--calls",
        str(options.calls),
        "--worker-prefix",
        prefix,
        "--worker-nodes",
        *nodes,
    ]
    # Run from the tree: `python -m` puts the working directory first on sys.path.
    output = subprocess.run(
        command, env=environment, cwd=tree, check=True, capture_output=True, text=True
    )
    results: dict[str, Any] = json.loads(output.stdout.strip().splitlines()[-1])
    if not Path(results.pop("store")).is_relative_to(tree):
        raise RuntimeError(f"the worker of {tree} imported another tree's store")
    return results


def main() -> None:
    """Start the cluster, run the workers alternately, print the table, stop the cluster."""
    options = arguments()
    if options.worker_nodes:
        import store

        print(json.dumps({**asyncio.run(work(options)), "store": store.__file__}))
        return
    trees = {"this tree": REPO}
    if options.baseline is not None:
        trees = {"baseline": options.baseline.resolve(), **trees}
    cluster = PrivateRedisCluster(masters=3)
    samples: dict[tuple[str, str], list[float]] = {}
    try:
        cluster.start()
        nodes = [f"redis://{node.address}/0" for node in cluster.nodes]
        for round_number in range(options.rounds):
            for label, tree in trees.items():
                prefix = f"cost{round_number}{'b' if label == 'baseline' else 't'}"
                for case, cost in run_worker(tree, nodes, prefix, options).items():
                    samples.setdefault((case, label), []).append(cost)
                print(f"round {round_number + 1}: {label} done", flush=True)
    finally:
        cluster.cleanup()
    print()
    print(
        f"3-master cluster, {options.players:,} players per board, incrementScores x{BATCH}, "
        f"{options.calls} calls per case x {options.rounds} rounds: Redis µs per increment, "
        "all nodes: process CPU and EVALSHA; client CPU (median; range)"
    )
    print(
        "| shards | rank selected | board watched | "
        + " | ".join(f"{label}: CPU | {label}: EVALSHA | {label}: client" for label in trees)
        + " |"
    )
    print("| ---: | --- | --- |" + " ---: | ---: | ---: |" * len(trees))
    for case in dict.fromkeys(case for case, _ in samples if case.count("|") == 2):
        shards, ranks, watched = case.split("|")
        cells = []
        for label in trees:
            for values in (
                samples[case, label],
                samples[f"{case}|evalsha", label],
                samples[f"{case}|client", label],
            ):
                cells.append(
                    f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"
                )
        print(f"| {shards} | {ranks} | {watched} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
