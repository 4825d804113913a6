"""The benchmark's environment: private servers, the service, the naive app, and the checks.

`Bench` is an async context manager: entering it starts a private Redis and (unless
`--mysql-host` names an existing server) a private MariaDB, creates a scratch database,
and leaving it stops every process and drops/deletes everything it created, also on
Ctrl-C or an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import secrets
import signal
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import aiomysql
import httpx
import uvloop

from benchmarks.processes import (
    REPO,
    LeaderboardService,
    NaiveApp,
    PrivateMariaDB,
    PrivateRedis,
    remove_directory,
    scratch_directory,
    stop_all,
)

BOARDS = (
    "spike",
    "write",
    "read",
    "ingest",
    "outage",
    "fanout",
    "recovery",
    "scale",
    "subscribers",
    "paging",
)
"""One board per scenario (reset `never`: period `all`), so every count check is isolated."""
PERIOD = "all"
SEASONS_BOARD = "seasons"
"""The seasons scenario's board: it resets daily, so that it has final periods."""
KEY_PREFIX = "lbbench"


@dataclass
class Options:
    """What to run and how long."""

    quick: bool
    scenarios: tuple[str, ...]
    workers: int
    connections: int
    results: Path
    profile: bool
    mysql_host: str | None
    mysql_port: int
    settings: tuple[tuple[str, str], ...] = ()
    """Extra LEADERBOARD_* settings of the service (to compare one setting's effect)."""
    mariadb_options: tuple[str, ...] = ()
    """Extra options of the private mariadbd (after the shared server's settings)."""
    archive_old_rows: int | None = None
    """Old history rows of the archive scenario (None: the mode's default)."""

    def seconds(self, quick: float, full: float) -> float:
        """A duration for the current mode."""
        return quick if self.quick else full

    def size(self, quick: int, full: int) -> int:
        """A size for the current mode."""
        return quick if self.quick else full


@dataclass
class Row:
    """One line of the results table."""

    scenario: str
    measured: str
    throughput: float | None = None
    unit: str = "req/s"
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    baseline: str = ""
    ratio: float | None = None
    target: str = ""
    passed: bool | None = None
    value: str = ""
    """Shown in the throughput column when the row is not a throughput (seconds, a count)."""
    cpu_ms: float | None = None
    """Server CPU milliseconds per request in the measured window (robust to a busy machine)."""
    baseline_cpu_ms: float | None = None
    details: dict[str, Any] = field(default_factory=dict)


class Bench:
    """Servers and processes of one benchmark run."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.scratch = scratch_directory()
        self.token = secrets.token_urlsafe(24)
        self.database = f"lbbench_{secrets.token_hex(4)}"
        self.redis = PrivateRedis(self.scratch / "redis")
        self.mariadb: PrivateMariaDB | None = None
        self.mysql_host = options.mysql_host or "127.0.0.1"
        self.mysql_port = options.mysql_port
        self.service: LeaderboardService | None = None
        self.naive: NaiveApp | None = None
        self._admin: aiomysql.Connection | None = None
        self.client = httpx.AsyncClient(timeout=60.0)

    # Lifecycle

    async def __aenter__(self) -> Bench:
        try:
            starts = [self.redis.start()]
            if self.options.mysql_host is None:
                self.mariadb = PrivateMariaDB(
                    self.scratch / "mariadb", extra_options=self.options.mariadb_options
                )
                starts.append(self.mariadb.start())
            await asyncio.gather(*starts)
            if self.mariadb is not None:
                self.mysql_port = self.mariadb.port
            self._admin = await aiomysql.connect(
                host=self.mysql_host, port=self.mysql_port, user="root", autocommit=True
            )
            await self.sql(f"CREATE DATABASE `{self.database}`")
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop everything and delete what was created (best effort, every step)."""
        for process in (self.naive, self.service):
            if process is not None:
                with contextlib.suppress(Exception):
                    await process.stop(timeout=30)
        with contextlib.suppress(Exception):
            await self.client.aclose()
        if self._admin is not None:
            with contextlib.suppress(Exception):
                await self.sql(f"DROP DATABASE IF EXISTS `{self.database}`")
            self._admin.close()
            self._admin = None
        for server in (self.mariadb, self.redis):
            if server is not None:
                with contextlib.suppress(Exception):
                    await server.stop(timeout=30)
        self.copy_logs()
        remove_directory(self.scratch)

    def copy_logs(self) -> None:
        """Keep the processes' logs next to the results."""
        logs = self.options.results / "logs"
        for process in (self.service, self.naive, self.redis):
            if process is not None and process.log_path.exists():
                logs.mkdir(parents=True, exist_ok=True)
                (logs / process.log_path.name).write_bytes(process.log_path.read_bytes())

    # Processes

    @property
    def mysql_url(self) -> str:
        """The service's history URL."""
        return f"mysql+aiomysql://root@{self.mysql_host}:{self.mysql_port}/{self.database}"

    def service_environment(self, log_level: str = "WARNING") -> dict[str, str]:
        """The service's LEADERBOARD_* settings."""
        return {
            "LEADERBOARD_REDIS_URL": self.redis.url,
            "LEADERBOARD_DATABASE_URL": self.mysql_url,
            "LEADERBOARD_WRITE_TOKEN": self.token,
            "LEADERBOARD_KEY_PREFIX": KEY_PREFIX,
            "LEADERBOARD_BOARDS": ",".join(
                [*(f"{board}:never" for board in BOARDS), f"{SEASONS_BOARD}:daily"]
            ),
            "LEADERBOARD_LOG_LEVEL": log_level,
            **{f"LEADERBOARD_{name.upper()}": value for name, value in self.options.settings},
        }

    def setting(self, name: str, default: str) -> str:
        """A service setting passed with --setting, else the service's default."""
        return dict(self.options.settings).get(name, default)

    async def start_service(self) -> LeaderboardService:
        """`leaderboard serve` on the private Redis and the scratch database."""
        service = LeaderboardService(
            self.scratch / "service", self.service_environment(), self.options.workers
        )
        self.service = service
        await service.start()
        return service

    async def start_naive(self) -> NaiveApp:
        """The naive baseline app on the same Redis."""
        naive = NaiveApp(
            self.scratch / "naive",
            {
                "NAIVE_REDIS_URL": self.redis.url,
                "NAIVE_KEY_PREFIX": f"{KEY_PREFIX}-naive",
                "PYTHONPATH": str(REPO),
            },
            self.options.workers,
        )
        self.naive = naive
        await naive.start()
        return naive

    async def stop_naive(self) -> None:
        """Stop the naive app (it would only take memory from here on)."""
        if self.naive is not None:
            await self.naive.stop()

    @property
    def app(self) -> LeaderboardService:
        """The running service."""
        assert self.service is not None
        return self.service

    @property
    def service_port(self) -> int:
        """The running service's port."""
        return self.app.port

    # GraphQL (control plane: setup and checks, not measured)

    async def graphql(
        self, query: str, variables: dict[str, Any] | None = None, *, write: bool = False
    ) -> dict[str, Any]:
        """Run a document against the service; its data (errors raise)."""
        assert self.service is not None
        headers = {"X-Internal-Token": self.token} if write else {}
        response = await self.client.post(
            f"{self.service.url}/graphql",
            json={"query": query, "variables": variables or {}},
            headers=headers,
        )
        payload: dict[str, Any] = response.json()
        if response.status_code != 200 or payload.get("errors"):
            raise RuntimeError(f"GraphQL failed ({response.status_code}): {payload}")
        data: dict[str, Any] = payload["data"]
        return data

    async def seed_through_service(
        self, board: str, totals: Sequence[tuple[str, int]], batch: int = 500
    ) -> None:
        """Give players their scores with incrementScores calls (acknowledged like any write)."""
        query = "mutation($i: [ScoreIncrement!]!) { incrementScores(increments: $i) { applied } }"
        for start in range(0, len(totals), batch):
            items = [
                {"username": username, "delta": delta, "board": board}
                for username, delta in totals[start : start + batch]
            ]
            await self.graphql(query, {"i": items}, write=True)

    async def service_totals(self, board: str) -> tuple[int, int]:
        """(players, sum of scores) of a board as the service reads it from Redis.

        Pages of `topPlayers(limit: 100)`, 30 aliased pages per request (the alias limit).
        """
        players = total = 0
        offset = 0
        while True:
            fields = " ".join(
                f'p{page}: topPlayers(board: "{board}", limit: 100, offset: {offset + 100 * page})'
                " { score }"
                for page in range(30)
            )
            data = await self.graphql(f"query {{ {fields} }}")
            done = False
            for page in range(30):
                entries = data[f"p{page}"]
                players += len(entries)
                total += sum(int(entry["score"]) for entry in entries)
                if len(entries) < 100:
                    done = True
            if done:
                return players, total
            offset += 3000

    async def player_count(self, board: str) -> int:
        """The board's playerCount."""
        data = await self.graphql("query { leaderboards { id playerCount } }")
        return next(
            int(item["playerCount"]) for item in data["leaderboards"] if item["id"] == board
        )

    # MySQL

    async def sql(self, statement: str, *arguments: object) -> list[tuple[Any, ...]]:
        """Run one statement on the admin connection; its rows."""
        assert self._admin is not None
        async with self._admin.cursor() as cursor:
            await cursor.execute(statement, arguments or None)
            return list(await cursor.fetchall())

    async def history_totals(self, board: str) -> tuple[int, int]:
        """(events, sum of deltas) of a board in MySQL."""
        rows = await self.sql(
            f"SELECT COUNT(*), COALESCE(SUM(delta), 0) FROM `{self.database}`.score_events "
            "WHERE board = %s AND period = %s",
            board,
            PERIOD,
        )
        return int(rows[0][0]), int(rows[0][1])

    async def wait_persisted(self, board: str, events: int, timeout: float = 60.0) -> float:
        """Poll MySQL until the board holds `events` events (or stops growing); when it did."""
        deadline = time.monotonic() + timeout
        last, last_change = -1, time.monotonic()
        while True:
            count, _ = await self.history_totals(board)
            now = time.monotonic()
            if count >= events:
                return time.perf_counter()
            if count != last:
                last, last_change = count, now
            elif now - last_change > 3.0 or now > deadline:
                return time.perf_counter()
            await asyncio.sleep(0.05)

    async def global_status(self, name: str) -> int:
        """A global status counter of the MySQL server."""
        rows = await self.sql("SHOW GLOBAL STATUS LIKE %s", name)
        return int(rows[0][1]) if rows else 0

    @property
    def private_mysql(self) -> bool:
        """Whether the MySQL server is ours alone (global counters are then exact)."""
        return self.mariadb is not None


def ratio(value: float | None, baseline: float | None) -> float | None:
    """value / baseline, None when either is missing or the baseline is 0."""
    if value is None or baseline is None or baseline == 0 or math.isnan(value):
        return None
    return value / baseline


def run_interruptibly(work: Callable[[], Coroutine[Any, Any, int]]) -> int:
    """Run a benchmark's `work` to its exit code; Ctrl-C or SIGTERM stop everything it started."""
    # Started in the background by a shell, SIGINT may be ignored: take it back, so that
    # `kill -INT` (like Ctrl-C) always reaches the cleanup.
    signal.signal(signal.SIGINT, signal.default_int_handler)

    async def guarded() -> int:
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        return await work()

    try:
        return uvloop.run(guarded())
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("\ninterrupted: every process started was stopped", file=sys.stderr)
        return 130
    finally:
        stop_all()
