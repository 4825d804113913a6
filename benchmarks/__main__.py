"""Run the benchmark: `make bench` (full) or `make bench ARGS="--quick"`.

    python -m benchmarks [--quick]
        [--scenarios spike,write,read,ingest,fanout,wsmemory,redismemory,recovery,scale]
        [--workers N] [--connections 64] [--profile] [--mysql-host H --mysql-port P]
        [--archive-old-rows N]

Starts everything it measures: a private redis-server and a private MariaDB (mirroring the
machine's server settings) on free ports, `leaderboard serve`, and the naive baseline app;
runs redis-benchmark; then the scenarios. Prints one table and writes raw JSON and an HTML
report to benchmarks/results/<timestamp>/ (and results/latest.{json,html,md}).
Ctrl-C stops every process it started and deletes what it created.

Scenario load with Locust (HTML and JSON reports) is `python -m benchmarks.locust_run`.
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import shutil
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import report, scenarios
from benchmarks.bench import Bench, Options, Row, run_interruptibly

RESULTS = Path(__file__).resolve().parent / "results"


def parse(argv: Sequence[str]) -> Options:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description="Benchmark the leaderboard service."
    )
    parser.add_argument(
        "--quick", action="store_true", help="a few seconds per scenario, smaller data sets"
    )
    parser.add_argument(
        "--scenarios",
        default=",".join(scenarios.SCENARIOS),
        help=f"comma-separated, of: {', '.join(scenarios.SCENARIOS)} (default: all)",
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="uvicorn workers of the service and the naive app"
    )
    parser.add_argument("--connections", type=int, default=64, help="HTTP connections of the load")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also py-spy the service under write, read and ingest load (needs py-spy)",
    )
    parser.add_argument(
        "--mysql-host",
        default=None,
        help="use this MySQL/MariaDB server (a scratch database on it) instead of a private one",
    )
    parser.add_argument("--mysql-port", type=int, default=3306)
    parser.add_argument(
        "--mariadb-option",
        action="append",
        default=[],
        metavar="OPTION",
        help="an extra mariadbd option of the private MariaDB, after the shared server's "
        "settings, e.g. --mariadb-option=--innodb-buffer-pool-size=2G (repeatable)",
    )
    parser.add_argument(
        "--archive-old-rows",
        type=int,
        default=None,
        metavar="N",
        help="old history rows of the archive scenario (default: 200,000 quick, "
        "50,000,000 full, the figure #15 asks for)",
    )
    parser.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a service setting, e.g. top_cache_staleness_ms=0 (repeatable)",
    )
    arguments = parser.parse_args(argv)
    settings = tuple(item.partition("=")[::2] for item in arguments.setting)
    if any(not name or not value for name, value in settings):
        parser.error("--setting takes NAME=VALUE")
    chosen = tuple(name.strip() for name in arguments.scenarios.split(",") if name.strip())
    unknown = [name for name in chosen if name not in scenarios.SCENARIOS]
    if unknown or not chosen:
        parser.error(f"unknown scenarios {unknown}; choose from {', '.join(scenarios.SCENARIOS)}")
    if arguments.workers < 1 or arguments.connections < 1:
        parser.error("--workers and --connections must be at least 1")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    ordered = tuple(name for name in scenarios.SCENARIOS if name in chosen)
    return Options(
        quick=arguments.quick,
        scenarios=ordered,
        workers=arguments.workers,
        connections=arguments.connections,
        results=RESULTS / (stamp + ("-quick" if arguments.quick else "")),
        profile=arguments.profile,
        mysql_host=arguments.mysql_host,
        mysql_port=arguments.mysql_port,
        settings=settings,
        mariadb_options=tuple(arguments.mariadb_option),
        archive_old_rows=arguments.archive_old_rows,
    )


def load_average() -> str:
    """The 1/5/15-minute load averages (other work on the machine skews every number)."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return ""


async def run(options: Options, command: str) -> int:
    """Run the selected scenarios; write and print the results."""
    options.results.mkdir(parents=True, exist_ok=True)
    context = scenarios.Context()
    rows: list[Row] = []
    failures: list[str] = []
    started = time.monotonic()
    run_facts: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command,
        "mode": "quick" if options.quick else "full",
        "scenarios": ",".join(options.scenarios),
        "workers": options.workers,
        "connections": options.connections,
        "load average at start": load_average(),
        **{f"machine {key}": value for key, value in report.machine().items()},
    }
    print(f"results: {options.results}", flush=True)
    async with Bench(options) as bench:
        run_facts["mysql"] = (
            "private mariadbd (buffer pool 128M, flush at commit 1, no binlog)"
            + (f" with {' '.join(options.mariadb_options)}" if options.mariadb_options else "")
            if bench.private_mysql
            else f"{bench.mysql_host}:{bench.mysql_port} (shared)"
        )
        version = await bench.sql("SELECT VERSION()")
        run_facts["mysql version"] = version[0][0]
        print("baselines", flush=True)
        rows += await scenarios.redis_benchmark(bench, context)
        if scenarios.NEEDS_NAIVE & set(options.scenarios):
            await bench.start_naive()
        await bench.start_service()
        rows += await scenarios.loadgen_ceiling(bench, context)
        for name in options.scenarios:
            print(name, flush=True)
            try:
                rows += await scenarios.SCENARIOS[name](bench, context)
            except (Exception, TimeoutError) as error:  # one broken scenario must not hide the rest
                failures.append(f"{name}: {type(error).__name__}: {error}")
                print(f"  FAILED: {type(error).__name__}: {error}", flush=True)
                rows.append(
                    Row(scenario=name, measured=f"did not complete: {error}"[:200], passed=False)
                )
            if name in ("read", "spike") and not scenarios.NEEDS_NAIVE & set(
                options.scenarios[options.scenarios.index(name) + 1 :]
            ):
                await bench.stop_naive()
        assert bench.service is not None
        drained = await bench.service.stop(timeout=60)
        run_facts["service exit (SIGTERM, drained)"] = drained
    run_facts["load average at end"] = load_average()
    run_facts["seconds"] = round(time.monotonic() - started, 1)
    facts = {"run": run_facts, "profiles": context.profiles, "failures": failures}
    table = report.markdown_table(rows)
    print()
    print(table)
    report.write_json(options.results / "results.json", facts, rows)
    report.write_html(options.results / "report.html", facts, rows)
    (options.results / "table.md").write_text(table + "\n")
    for name in ("results.json", "report.html", "table.md"):
        shutil.copyfile(options.results / name, RESULTS / f"latest{Path(name).suffix}")
    for name, profile in context.profiles.items():
        print(f"\nprofile {name}: top self time ({profile['samples']:,} samples)")
        for function, share in profile["self"][:12]:
            print(f"  {share:5.1f} %  {function}")
    print(f"\nJSON: {options.results / 'results.json'}\nHTML: {options.results / 'report.html'}")
    return 1 if failures else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; Ctrl-C or SIGTERM stop everything the run started."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    options = parse(arguments)
    command = shlex.join(
        ["make", "bench", f"ARGS={shlex.join(arguments)}"] if arguments else ["make", "bench"]
    )
    return run_interruptibly(lambda: run(options, command))


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
