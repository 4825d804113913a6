"""Every process the benchmark starts: private Redis and MariaDB, the service, the naive app.

Each process runs in its own session (a Ctrl-C in the terminal reaches only the benchmark,
which then stops its children in order) and is registered in `_running`: `stop_all` (the
benchmark's `finally`) and an atexit hook (last resort) kill whatever is still alive, by
process id. Every server gets a free port on 127.0.0.1 and a private temporary directory.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from argparse import Namespace
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiomysql
import httpx

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
LEADERBOARD = BIN / "leaderboard"

_running: list[Managed] = []


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def clean_environment(extra: dict[str, str]) -> dict[str, str]:
    """The benchmark's environment without any LEADERBOARD_* setting, plus `extra`."""
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("LEADERBOARD_")
    }
    return environment | extra


class Managed:
    """A child process of the benchmark with a log file."""

    name = "process"

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        """Where the process writes its output."""
        return self.directory / f"{self.name}.log"

    @property
    def pid(self) -> int:
        """The process id (it must have been started)."""
        assert self.process is not None
        return self.process.pid

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        """The end of the process's log."""
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def spawn(self, command: list[str], environment: dict[str, str] | None = None) -> None:
        """Start the command in its own session, output to the log file."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
                env=environment,
                start_new_session=True,
            )
        _running.append(self)

    async def stop(self, timeout: float = 30.0, signum: int = signal.SIGTERM) -> int | None:
        """Signal the process (and its process group: uvicorn's workers) and wait for it."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                # A paused process (the outage scenario's SIGSTOP) acts on nothing else.
                os.killpg(process.pid, signal.SIGCONT)
                os.killpg(process.pid, signum)
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(process.wait, timeout)
        code = process.poll()
        self.kill_now()
        return code

    def kill_now(self) -> None:
        """SIGKILL the process group and reap it (synchronous; for cleanup paths)."""
        process = self.process
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
        if self in _running:
            _running.remove(self)


def stop_all() -> None:
    """Kill every child still running (newest first)."""
    for managed in reversed(list(_running)):
        managed.kill_now()


atexit.register(stop_all)


def descendants(pid: int) -> list[int]:
    """The process and all its descendants (Linux /proc)."""
    found = [pid]
    at = 0
    while at < len(found):
        current = found[at]
        at += 1
        with contextlib.suppress(OSError):
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
            found += [int(child) for child in children]
    return found


def rss_bytes(pid: int) -> int:
    """Resident memory of a process tree, in bytes."""
    total = 0
    for member in descendants(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
    return total


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process tree so far, in seconds (Linux /proc)."""
    total = 0
    for member in descendants(pid):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _CLOCK_TICKS


class PrivateRedis(Managed):
    """redis-server on a free port, no persistence."""

    name = "redis"

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.port = free_port()

    @property
    def url(self) -> str:
        """redis:// URL of the server."""
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self, timeout: float = 20.0) -> None:
        """Start and wait for PONG."""
        self.spawn(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
                "--daemonize",
                "no",
            ]
        )
        deadline = time.monotonic() + timeout
        while True:
            if not self.running:
                raise RuntimeError(f"redis-server exited:\n{self.log_tail()}")
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.write(b"PING\r\n")
                answer = await reader.readline()
                writer.close()
                if answer.startswith(b"+PONG"):
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not answer:\n{self.log_tail()}")
            await asyncio.sleep(0.05)


# The machine's shared MariaDB runs with these (docs/history.md): the private one mirrors them.
MARIADB_OPTIONS = (
    "--innodb-buffer-pool-size=128M",
    "--innodb-log-file-size=96M",
    "--innodb-flush-log-at-trx-commit=1",
    "--innodb-flush-method=O_DIRECT",
    "--skip-log-bin",
    "--skip-name-resolve",
    "--performance-schema=OFF",
    "--max-connections=151",
    "--max-allowed-packet=16M",
)


class PrivateMariaDB(Managed):
    """mariadbd with a fresh data directory on a free port; root without password."""

    name = "mariadb"

    def __init__(self, directory: Path, extra_options: tuple[str, ...] = ()) -> None:
        super().__init__(directory)
        self.port = free_port()
        self.extra_options = extra_options

    @property
    def datadir(self) -> Path:
        """The data directory."""
        return self.directory / "data"

    async def start(self, timeout: float = 60.0) -> None:
        """Install a data directory, start the server, wait until it accepts root."""
        self.directory.mkdir(parents=True, exist_ok=True)
        user = ["--user=root"] if os.geteuid() == 0 else []
        install = await asyncio.create_subprocess_exec(
            "mariadb-install-db",
            "--no-defaults",
            f"--datadir={self.datadir}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            *user,
            *MARIADB_OPTIONS,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _, error = await install.communicate()
        if install.returncode != 0:
            raise RuntimeError(f"mariadb-install-db failed: {error.decode(errors='replace')}")
        self.spawn(
            [
                "/usr/sbin/mariadbd",
                "--no-defaults",
                f"--datadir={self.datadir}",
                *user,
                "--skip-networking=0",
                "--bind-address=127.0.0.1",
                f"--port={self.port}",
                f"--socket={self.directory / 'mariadb.sock'}",
                f"--pid-file={self.directory / 'mariadb.pid'}",
                f"--tmpdir={self.directory}",
                *MARIADB_OPTIONS,
                *self.extra_options,
            ]
        )
        deadline = time.monotonic() + timeout
        while True:
            if not self.running:
                raise RuntimeError(f"mariadbd exited:\n{self.log_tail()}")
            try:
                connection = await aiomysql.connect(
                    host="127.0.0.1", port=self.port, user="root", connect_timeout=2
                )
                connection.close()
                return
            except (aiomysql.Error, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"mariadbd did not answer:\n{self.log_tail()}")
            await asyncio.sleep(0.1)


class HttpService(Managed):
    """An ASGI server process answering on a free port, ready when `ready_path` says 200."""

    ready_path = "/healthz"

    def __init__(self, directory: Path, environment: dict[str, str], workers: int) -> None:
        super().__init__(directory)
        self.environment = environment
        self.workers = workers
        self.port = free_port()

    @property
    def url(self) -> str:
        """Base URL."""
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        """What to run."""
        raise NotImplementedError

    async def start(self, timeout: float = 60.0) -> None:
        """Start and wait until ready."""
        self.spawn(self.command(), clean_environment(self.environment))
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(base_url=self.url, timeout=5.0) as client:
            while True:
                if not self.running:
                    raise RuntimeError(f"{self.name} exited early:\n{self.log_tail()}")
                try:
                    if (await client.get(self.ready_path)).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.name} did not become ready:\n{self.log_tail()}")
                await asyncio.sleep(0.1)

    def rss(self) -> int:
        """Resident memory of the server and its workers."""
        return rss_bytes(self.pid) if self.running else 0

    def cpu(self) -> float:
        """CPU seconds the server and its workers used so far."""
        return cpu_seconds(self.pid) if self.running else 0.0


class LeaderboardService(HttpService):
    """`leaderboard serve`, the way an operator runs it."""

    name = "service"
    ready_path = "/readyz"

    def command(self) -> list[str]:
        """`leaderboard serve --port P --workers N`."""
        return [str(LEADERBOARD), "serve", "--port", str(self.port), "--workers", str(self.workers)]


class NaiveApp(HttpService):
    """The baseline app of `benchmarks/naive_app.py`."""

    name = "naive"
    ready_path = "/graphql"  # GraphiQL: the app serves nothing else

    def command(self) -> list[str]:
        """`python -m benchmarks.naive_app --port P --workers N`."""
        return [
            sys.executable,
            "-m",
            "benchmarks.naive_app",
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
        ]


def scratch_directory() -> Path:
    """A private temporary directory (short path: Unix socket paths are limited)."""
    return Path(tempfile.mkdtemp(prefix="lbbench-"))


def remove_directory(directory: Path) -> None:
    """Delete a scratch directory."""
    shutil.rmtree(directory, ignore_errors=True)


@contextlib.asynccontextmanager
async def private_redis() -> AsyncIterator[PrivateRedis]:
    """A running private Redis in a scratch directory, stopped and deleted afterwards."""
    directory = scratch_directory()
    redis = PrivateRedis(directory)
    try:
        await redis.start()
        yield redis
    finally:
        redis.kill_now()
        remove_directory(directory)


def run_on_private_redis(
    measure: Callable[[str, Namespace], Awaitable[None]], options: Namespace
) -> None:
    """Start a private Redis, run `measure(its url, options)` on it, stop it (the stand-alone
    Redis benchmarks' `main`)."""

    async def run() -> None:
        async with private_redis() as redis:
            await measure(redis.url, options)

    asyncio.run(run())
