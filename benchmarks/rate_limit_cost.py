"""The rate limiter's cost per request: the same reads on two instances of one run, one
with `LEADERBOARD_RATE_LIMIT_READS` (a limit too high to refuse anything, so every request
pays for its check and none is refused), measured in turn: off, on, off, on."""

from __future__ import annotations

from benchmarks import documents
from benchmarks.bench import Bench, Row
from benchmarks.loadgen import Recorder
from benchmarks.processes import LeaderboardService

LIMIT = "1000000/s burst 1000000"
PLAYERS = 1_000


async def rate_limit_cost(bench: Bench, context: object) -> list[Row]:
    """topPlayers(limit: 10) and player without the limiter and with it (one Redis round
    trip per request); the difference in server CPU per request is the check's cost."""
    # Here, not at the top: scenarios.py registers this scenario.
    from benchmarks.scenarios import describe, run_closed, say, throughput_row

    users = [f"limits{number}" for number in range(PLAYERS)]
    await bench.seed_through_service(
        "read", [(user, number + 1) for number, user in enumerate(users)]
    )
    limited = LeaderboardService(
        bench.scratch / "service-rate-limited",
        bench.service_environment() | {"LEADERBOARD_RATE_LIMIT_READS": LIMIT},
        bench.options.workers,
    )
    await limited.start()
    connections = bench.options.connections
    seconds = bench.options.seconds(2, 8)
    warmup = bench.options.seconds(0.5, 1)
    rows = []
    try:
        for name, document, usernames in (
            ("topPlayers(limit: 10)", documents.TOP, None),
            ("player", documents.PLAYER, users),
        ):
            requests = documents.reads(document, "read", usernames)
            runs: dict[str, list[Recorder]] = {"off": [], "on": []}
            for _ in range(2):
                for label, service in (("off", bench.app), ("on", limited)):
                    recorder = await run_closed(
                        service, requests, seconds, connections=connections, warmup=warmup
                    )
                    say(f"  {name}, rate limit {label}: {describe(recorder)}")
                    runs[label].append(recorder)
            # The better of each pair: a busy machine only ever makes a run slower.
            best = {
                label: max(recorders, key=lambda r: r.summary()["rps"])
                for label, recorders in runs.items()
            }
            row = throughput_row(
                "rate limits",
                f"{name} with LEADERBOARD_RATE_LIMIT_READS, {connections} conns",
                best["on"],
                baseline=best["off"],
                baseline_name=f"{name} without",
            )
            on_cpu, off_cpu = row.cpu_ms, row.baseline_cpu_ms
            if on_cpu is not None and off_cpu is not None:
                row.target = f"check costs {(on_cpu - off_cpu) * 1000:.0f} µs server CPU"
            rows.append(row)
    finally:
        await limited.stop()
    return rows
