"""Run one Locust scenario against a freshly started environment, headless, with reports.

    python -m benchmarks.locust_run --scenario spike|write-stress|read|ingest|subscriptions
        [--minutes N | --seconds N] [--users N] [--workers N] [--mysql-host H --mysql-port P]

Starts what `make bench` starts (`benchmarks.bench.Bench`: a private redis-server and
MariaDB, a scratch database, `leaderboard serve`), seeds the players the scenario reads,
runs Locust (`benchmarks/locustfile.py`) in its own process, and writes to
benchmarks/results/locust-<scenario>-<UTC timestamp>/: Locust's `report.html` and
`stats.json`, `summary.json` (the run's facts, Locust's and the service's CPU, the
acknowledged increments and the count check) and `logs/`. After a scenario that writes it
checks Redis totals = MySQL totals = increments acknowledged, like the benchmark.
Ctrl-C stops every process it started and deletes what it created.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import locust_scenarios, report
from benchmarks.__main__ import RESULTS, load_average
from benchmarks.bench import Bench, Options, Row, run_interruptibly
from benchmarks.processes import REPO, Managed, clean_environment, cpu_seconds
from benchmarks.scenarios import Acks, counts_row

LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
STOP_TIMEOUT_SECONDS = 30
"""How long Locust lets users finish their request at the end (an unread answer would
leave an applied increment unacknowledged and break the count check)."""


@dataclass(frozen=True)
class RunOptions:
    """What to run."""

    scenario: str
    seconds: float
    users: int
    workers: int
    mysql_host: str | None
    mysql_port: int
    results: Path


def parse(argv: Sequence[str]) -> RunOptions:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.locust_run",
        description="Run one Locust scenario against a freshly started service.",
    )
    parser.add_argument("--scenario", required=True, choices=list(locust_scenarios.SCENARIOS))
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--minutes", type=float, help="length of the scenario")
    length.add_argument("--seconds", type=float, help="length of the scenario")
    parser.add_argument("--users", type=int, help="Locust users at the peak")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers of the service")
    parser.add_argument(
        "--mysql-host",
        default=None,
        help="use this MySQL/MariaDB server (a scratch database on it) instead of a private one",
    )
    parser.add_argument("--mysql-port", type=int, default=3306)
    arguments = parser.parse_args(argv)
    scenario = locust_scenarios.SCENARIOS[arguments.scenario]
    if arguments.minutes is not None:
        seconds = arguments.minutes * 60
    elif arguments.seconds is not None:
        seconds = arguments.seconds
    else:
        seconds = scenario.seconds
    users = arguments.users if arguments.users is not None else scenario.users
    if users < minimum_users(scenario.name):
        parser.error(f"{scenario.name} needs at least {minimum_users(scenario.name)} users")
    if arguments.workers < 1:
        parser.error("--workers must be at least 1")
    try:
        locust_scenarios.stages(scenario.name, users, seconds)
    except ValueError as error:
        parser.error(str(error))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return RunOptions(
        scenario=scenario.name,
        seconds=seconds,
        users=users,
        workers=arguments.workers,
        mysql_host=arguments.mysql_host,
        mysql_port=arguments.mysql_port,
        results=RESULTS / f"locust-{scenario.name}-{stamp}",
    )


def minimum_users(scenario: str) -> int:
    """The fewest users a scenario can run with (the subscriptions' fixed writers and overlays)."""
    if scenario == "subscriptions":
        return locust_scenarios.SUBSCRIPTION_WRITERS + locust_scenarios.SUBSCRIPTION_OVERLAYS + 1
    return 1


def locust_command(options: RunOptions, host: str) -> list[str]:
    """The headless Locust command line (the token and the acks file go in the environment)."""
    return [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--host",
        host,
        "--scenario",
        options.scenario,
        "--scenario-seconds",
        f"{options.seconds:g}",
        "--users",
        str(options.users),
        "--stop-timeout",
        str(STOP_TIMEOUT_SECONDS),
        "--html",
        str(options.results / "report.html"),
        "--json-file",
        str(options.results / "stats"),  # Locust adds ".json"
        "--only-summary",
        "--loglevel",
        "INFO",
    ]


class LocustProcess(Managed):
    """Locust in its own process (gevent must not patch this asyncio process)."""

    name = "locust"


def percentile(histogram: dict[str, int], share: float) -> float | None:
    """A percentile (0..1) of Locust's response time histogram {rounded ms: count}."""
    ordered = sorted((float(milliseconds), count) for milliseconds, count in histogram.items())
    total = sum(count for _, count in ordered)
    if total == 0:
        return None
    wanted = share * total
    seen = 0
    for milliseconds, count in ordered:
        seen += count
        if seen >= wanted:
            return milliseconds
    return ordered[-1][0]


def summarize(stats: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One line per request name of Locust's JSON stats: counts, rate and percentiles."""
    lines = []
    for entry in stats:
        requests = int(entry["num_requests"])
        span = float(entry["last_request_timestamp"] or 0) - float(entry["start_time"] or 0)
        histogram = entry["response_times"]
        lines.append(
            {
                "type": entry["method"],
                "name": entry["name"],
                "requests": requests,
                "failures": int(entry["num_failures"]),
                "per_second": requests / span if span > 0 else None,
                "p50_ms": percentile(histogram, 0.50),
                "p95_ms": percentile(histogram, 0.95),
                "p99_ms": percentile(histogram, 0.99),
                "max_ms": entry["max_response_time"],
            }
        )
    return lines


def per_second(stats: list[dict[str, Any]]) -> list[int]:
    """Requests completed in each second of the run, every request name together."""
    counts: dict[int, int] = {}
    for entry in stats:
        for second, count in entry["num_reqs_per_sec"].items():
            counts[int(second)] = counts.get(int(second), 0) + int(count)
    if not counts:
        return []
    first, last = min(counts), max(counts)
    return [counts.get(second, 0) for second in range(first, last + 1)]


def table(lines: list[dict[str, Any]]) -> str:
    """The summary lines as a Markdown table."""

    def number(value: float | None, digits: int = 0) -> str:
        return "—" if value is None else f"{value:,.{digits}f}"

    rows = [
        "| type | name | requests | failures | req/s | p50 ms | p95 ms | p99 ms | max ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    rows += [
        f"| {line['type']} | {line['name']} | {line['requests']:,} | {line['failures']:,} | "
        f"{number(line['per_second'])} | {number(line['p50_ms'])} | {number(line['p95_ms'])} | "
        f"{number(line['p99_ms'])} | {number(line['max_ms'])} |"
        for line in lines
    ]
    return "\n".join(rows)


async def run_locust(bench: Bench, options: RunOptions) -> dict[str, Any]:
    """Run Locust to its end; its exit code, CPU and wall time, and the service's CPU."""
    acks_file = options.results / "acks.json"
    environment = clean_environment(
        {
            "PYTHONPATH": str(REPO),
            "LOCUST_WRITE_TOKEN": bench.token,
            "LOCUST_ACKS_FILE": str(acks_file),
        }
    )
    locust = LocustProcess(options.results)
    service_cpu_before = bench.app.cpu()
    started = time.monotonic()
    locust.spawn(locust_command(options, bench.app.url), environment)
    locust_cpu = 0.0
    deadline = started + options.seconds + STOP_TIMEOUT_SECONDS + 120
    # Locust's CPU is sampled while it runs: /proc forgets a process once it exited.
    while locust.running:
        locust_cpu = max(locust_cpu, cpu_seconds(locust.pid))
        if time.monotonic() > deadline:
            await locust.stop(timeout=30)
            raise TimeoutError(f"Locust did not finish:\n{locust.log_tail()}")
        await asyncio.sleep(0.5)
    wall = time.monotonic() - started
    assert locust.process is not None
    code = locust.process.returncode
    service_cpu = bench.app.cpu() - service_cpu_before
    locust.kill_now()
    return {
        "locust_exit_code": code,
        "wall_seconds": round(wall, 1),
        "locust_cpu_seconds": round(locust_cpu, 1),
        "locust_cores_busy": round(locust_cpu / wall, 2),
        "service_cpu_seconds": round(service_cpu, 1),
        "service_cores_busy": round(service_cpu / wall, 2),
        "acks": json.loads(acks_file.read_text()) if acks_file.exists() else None,
    }


async def run(options: RunOptions, command: str) -> int:
    """Start the environment, seed, run Locust, check the counts; write and print the summary."""
    scenario = locust_scenarios.SCENARIOS[options.scenario]
    options.results.mkdir(parents=True, exist_ok=True)
    facts: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command,
        "scenario": scenario.name,
        "what": scenario.summary,
        "users": options.users,
        "seconds": options.seconds,
        "workers": options.workers,
        "load average at start": load_average(),
        **{f"machine {key}": value for key, value in report.machine().items()},
    }
    print(f"results: {options.results}", flush=True)
    bench_options = Options(
        quick=False,
        scenarios=(),
        workers=options.workers,
        connections=options.users,
        results=options.results,
        profile=False,
        mysql_host=options.mysql_host,
        mysql_port=options.mysql_port,
    )
    check: Row | None = None
    async with Bench(bench_options) as bench:
        await bench.start_service()
        seeded = locust_scenarios.seed_scores(scenario.name)
        if seeded:
            print(f"seeding {len(seeded):,} players", flush=True)
            await bench.seed_through_service(scenario.board, seeded)
        print(f"locust: {scenario.name}, {options.users} users, {options.seconds:g} s", flush=True)
        facts |= await run_locust(bench, options)
        acknowledged = facts["acks"]
        if scenario.writes and acknowledged is not None:
            acks = Acks()
            acks.events, acks.total = acknowledged["events"], acknowledged["total"]
            seeded_total = sum(score for _, score in seeded)
            check = await counts_row(bench, scenario.name, scenario.board, acks, seeded_total)
        facts["service exit (SIGTERM, drained)"] = await bench.app.stop(timeout=60)
    facts["load average at end"] = load_average()
    stats_file = options.results / "stats.json"
    stats = json.loads(stats_file.read_text()) if stats_file.exists() else []
    lines = summarize(stats)
    facts["requests"] = lines
    facts["requests per second"] = per_second(stats)
    if check is not None:
        facts["count check"] = asdict(check)
    (options.results / "summary.json").write_text(json.dumps(facts, indent=2, default=str) + "\n")

    print()
    print(table(lines))
    print(
        f"\nbusiest second: {max(facts['requests per second'], default=0):,} requests; "
        f"CPU: Locust {facts['locust_cores_busy']} cores, service "
        f"{facts['service_cores_busy']} cores over {facts['wall_seconds']} s; "
        f"load average {facts['load average at start']} → {facts['load average at end']}"
    )
    if acknowledged is None:
        print("no acknowledgement file: Locust did not finish cleanly", file=sys.stderr)
    else:
        rate = acknowledged["events"] / options.seconds
        print(f"acknowledged: {json.dumps(acknowledged)} ({rate:,.0f} increments/s)")
    if check is not None:
        print(f"counts Redis / MySQL / acknowledged: {check.value}: {report.cells(check)[-1]}")
    print(f"\nHTML: {options.results / 'report.html'}\nJSON: {stats_file}")
    print(f"summary: {options.results / 'summary.json'}")
    failed = facts["locust_exit_code"] != 0 or acknowledged is None
    return 1 if failed or (check is not None and not check.passed) else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; Ctrl-C or SIGTERM stop everything the run started."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    options = parse(arguments)
    command = shlex.join(["python", "-m", "benchmarks.locust_run", *arguments])
    return run_interruptibly(lambda: run(options, command))


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
