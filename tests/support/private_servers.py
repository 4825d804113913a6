"""Private MariaDB and Redis servers for fault tests: stop, kill and restart them at will.

Each server lives in its own temporary directory on a free port and never touches the
shared servers of the machine. A server keeps its directory and port across
`stop()`/`kill()` and `start()`, so a restarted MariaDB serves the same data at the
same URL. `cleanup()` (the fixtures and `async with` call it, also when a test fails,
and an atexit hook as a last resort) kills the process and deletes the directory.

    async def test_outage(private_mariadb: PrivateMariaDB) -> None:
        await private_mariadb.create_database("lb")
        url = private_mariadb.url("lb")
        await private_mariadb.stop()     # clean shutdown
        await private_mariadb.start()    # same datadir, same port
        await private_mariadb.kill()     # SIGKILL: crash recovery on the next start

A primary and a GTID replica of it (`replication_options` gives each a server id and a
binary log; `replicate_from` points the replica at the primary and starts it):

    primary = PrivateMariaDB(replication_options(server_id=1))
    replica = PrivateMariaDB(replication_options(server_id=2))
    ...start both...
    await replica.replicate_from(primary)
    await replica.wait_for_replication(primary)   # caught up with the primary's binlog
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
import weakref
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

import aiomysql
import pytest
import redis.asyncio as redis_asyncio

from tests.support.service_process import free_port
from tests.support.shared_services import MYSQL_USER, mysql_url

MARIADBD = os.environ.get("LEADERBOARD_TEST_MARIADBD", "/usr/sbin/mariadbd")
MARIADB_INSTALL_DB = os.environ.get("LEADERBOARD_TEST_MARIADB_INSTALL_DB", "mariadb-install-db")
REDIS_SERVER = os.environ.get("LEADERBOARD_TEST_REDIS_SERVER", "redis-server")

# Small and quick: these servers hold a few thousand rows at most.
_MARIADB_TUNING = (
    "--innodb-buffer-pool-size=16M",
    "--innodb-log-file-size=4M",
    "--skip-log-bin",
    "--skip-name-resolve",
    "--performance-schema=OFF",
    "--max-connections=64",
)

_running: weakref.WeakSet[_PrivateServer] = weakref.WeakSet()


@atexit.register
def _kill_leftovers() -> None:
    for server in list(_running):
        server.cleanup()


class _PrivateServer:
    """A server process of ours, in a private directory, on a fixed free port."""

    name = "server"
    own_process_group = False
    """Start the server in a process group of its own, killed whole (for servers whose
    worker processes outlive a killed master)."""

    def __init__(self) -> None:
        # Short path: a Unix socket path must stay under ~100 characters.
        self.directory = Path(tempfile.mkdtemp(prefix=f"lb-{self.name}-"))
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.start_seconds: float | None = None
        """How long the last `start()` took until the server accepted connections."""

    @property
    def log_path(self) -> Path:
        """Where the server writes its log."""
        return self.directory / f"{self.name}.log"

    @property
    def running(self) -> bool:
        """Whether our process is alive."""
        return self.process is not None and self.process.poll() is None

    def log(self, last_lines: int = 40) -> str:
        """The end of the server's log (for failure messages)."""
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(lines[-last_lines:])

    def _command(self) -> list[str]:
        raise NotImplementedError

    async def _prepare(self) -> None:
        """Anything to do once before the first start."""

    async def _answers(self) -> bool:
        """Whether the server accepts a client right now."""
        raise NotImplementedError

    async def start(self, timeout: float = 30.0) -> None:
        """Start the process (same directory and port as before) and wait until it answers."""
        if self.running:
            raise RuntimeError(f"private {self.name} is already running")
        started = time.monotonic()
        await self._prepare()
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self._command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
                start_new_session=self.own_process_group,
            )
        _running.add(self)
        deadline = started + timeout
        while True:
            if not self.running:
                raise RuntimeError(f"private {self.name} exited at start:\n{self.log()}")
            if await self._answers():
                break
            if time.monotonic() > deadline:
                self.kill_now()
                raise RuntimeError(f"private {self.name} did not answer in {timeout} s")
            await asyncio.sleep(0.02)
        self.start_seconds = time.monotonic() - started

    async def stop(self, timeout: float = 30.0) -> None:
        """Clean shutdown (SIGTERM), waiting for the process to exit."""
        await self._signal(signal.SIGTERM, timeout)

    async def kill(self) -> None:
        """SIGKILL: the process dies at once, as in a crash."""
        await self._signal(signal.SIGKILL, 10.0)

    async def _signal(self, signum: int, timeout: float) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signum)
        deadline = time.monotonic() + timeout
        while process.poll() is None:
            if time.monotonic() > deadline:
                self.kill_now()
                raise RuntimeError(f"private {self.name} did not stop in {timeout} s")
            await asyncio.sleep(0.02)

    def kill_now(self) -> None:
        """SIGKILL and reap, synchronously (for cleanup paths)."""
        process = self.process
        if process is None:
            return
        if self.own_process_group:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        elif process.poll() is None:
            process.kill()
        process.wait(timeout=10)

    def cleanup(self) -> None:
        """Kill the process if it runs and delete the directory."""
        self.kill_now()
        _running.discard(self)
        shutil.rmtree(self.directory, ignore_errors=True)

    async def __aenter__(self) -> Self:
        try:
            await self.start()
        except BaseException:
            self.cleanup()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.cleanup()


def replication_options(server_id: int) -> tuple[str, ...]:
    """Server options of a primary or replica: its own id, a binary log with GTIDs.

    `--log-slave-updates` lets a replica be promoted (its binlog holds what it applied);
    strict mode refuses out-of-order GTIDs instead of letting two servers diverge.
    """
    return (
        f"--server-id={server_id}",
        "--log-bin=lb-binlog",
        "--log-slave-updates",
        "--gtid-strict-mode=1",
    )


class PrivateMariaDB(_PrivateServer):
    """A MariaDB server of our own: root without password on 127.0.0.1:`port`.

    `server_options` go to `mariadbd` after the defaults (so `--log-bin` overrides the
    default `--skip-log-bin`); the installation of the data directory does not see them.
    """

    name = "mariadb"

    def __init__(self, server_options: Sequence[str] = ()) -> None:
        super().__init__()
        self.server_options = tuple(server_options)

    @property
    def datadir(self) -> Path:
        """The server's data directory."""
        return self.directory / "data"

    @property
    def socket_path(self) -> Path:
        """The server's Unix socket."""
        return self.directory / "mariadb.sock"

    def url(self, database: str) -> str:
        """A `databases` URL of a database on this server."""
        return mysql_url(database, host="127.0.0.1", port=self.port)

    async def _prepare(self) -> None:
        if self.datadir.exists():
            return
        # 'normal': root@localhost and root@127.0.0.1 log in without a password.
        command = [
            MARIADB_INSTALL_DB,
            "--no-defaults",
            f"--datadir={self.datadir}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            # Its own temporary files in our directory: installs running at once never meet.
            f"--tmpdir={self.directory}",
            *self._user_option(),
            *_MARIADB_TUNING,
        ]
        with (self.directory / "install.log").open("wb") as log:
            process = await asyncio.create_subprocess_exec(
                *command, stdout=log, stderr=subprocess.STDOUT
            )
            code = await process.wait()
        if code != 0:
            output = (self.directory / "install.log").read_text(errors="replace")
            raise RuntimeError(f"mariadb-install-db failed ({code}):\n{output}")

    @staticmethod
    def _user_option() -> list[str]:
        # mariadbd refuses to run as root unless told to.
        return ["--user=root"] if os.geteuid() == 0 else []

    def _command(self) -> list[str]:
        return [
            MARIADBD,
            "--no-defaults",
            f"--datadir={self.datadir}",
            *self._user_option(),
            "--skip-networking=0",
            "--bind-address=127.0.0.1",
            f"--port={self.port}",
            f"--socket={self.socket_path}",
            f"--pid-file={self.directory / 'mariadb.pid'}",
            f"--log-error={self.log_path}",
            f"--tmpdir={self.directory}",
            *_MARIADB_TUNING,
            *self.server_options,
        ]

    async def _answers(self) -> bool:
        try:
            connection = await aiomysql.connect(
                host="127.0.0.1", port=self.port, user=MYSQL_USER, connect_timeout=2
            )
        except (aiomysql.Error, OSError):
            return False
        connection.close()
        return True

    async def execute(self, statement: str, *arguments: object) -> list[tuple[object, ...]]:
        """Run one statement as root on a fresh connection; return its rows."""
        connection = await aiomysql.connect(
            host="127.0.0.1", port=self.port, user=MYSQL_USER, autocommit=True
        )
        try:
            async with connection.cursor() as cursor:
                await cursor.execute(statement, arguments or None)
                return list(await cursor.fetchall())
        finally:
            connection.close()

    async def create_database(self, name: str) -> str:
        """Create a database and return its `databases` URL."""
        await self.execute(f"CREATE DATABASE `{name}`")
        return self.url(name)

    async def replicate_from(self, primary: PrivateMariaDB, timeout: float = 30.0) -> None:
        """Make this server a GTID replica of `primary` and wait until both threads run.

        Both need `replication_options`. The replica logs in as root from 127.0.0.1, which
        has every privilege (REPLICATION SLAVE included) and no password on a private server.
        """
        await self.execute(
            "CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = %s, "
            "MASTER_USER = %s, MASTER_PASSWORD = '', MASTER_CONNECT_RETRY = 1, "
            "MASTER_USE_GTID = slave_pos",
            primary.port,
            MYSQL_USER,
        )
        await self.execute("START SLAVE")
        deadline = time.monotonic() + timeout
        # No event to wait for: the replica's threads report their state only when asked.
        while True:
            status = await self.replication_status()
            if status.get("Slave_IO_Running") == "Yes" and status.get("Slave_SQL_Running") == "Yes":
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"replication did not start in {timeout} s: {status}")
            await asyncio.sleep(0.05)

    async def replication_status(self) -> dict[str, object]:
        """`SHOW SLAVE STATUS` as a dict (empty when this server replicates nothing)."""
        connection = await aiomysql.connect(
            host="127.0.0.1", port=self.port, user=MYSQL_USER, autocommit=True
        )
        try:
            async with connection.cursor(aiomysql.DictCursor) as cursor:
                await cursor.execute("SHOW SLAVE STATUS")
                row = await cursor.fetchone()
        finally:
            connection.close()
        return dict(row) if row else {}

    async def wait_for_replication(self, primary: PrivateMariaDB, timeout: float = 30.0) -> None:
        """Return once this replica has applied everything in `primary`'s binary log."""
        ((position,),) = await primary.execute("SELECT @@GLOBAL.gtid_binlog_pos")
        ((reached,),) = await self.execute("SELECT MASTER_GTID_WAIT(%s, %s)", position, timeout)
        if reached != 0:
            status = await self.replication_status()
            raise RuntimeError(f"replica did not reach {position} in {timeout} s: {status}")


class PrivateRedis(_PrivateServer):
    """A Redis server of our own, without persistence."""

    name = "redis"

    def url(self, db: int = 0) -> str:
        """A redis:// URL of this server."""
        return f"redis://127.0.0.1:{self.port}/{db}"

    def _command(self) -> list[str]:
        return [
            REDIS_SERVER,
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
            "--logfile",
            str(self.log_path),
            "--daemonize",
            "no",
        ]

    async def _answers(self) -> bool:
        client = redis_asyncio.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=2)
        try:
            return bool(await client.ping())
        except (redis_asyncio.RedisError, OSError):
            return False
        finally:
            await client.aclose()


@pytest.fixture
async def private_mariadb() -> AsyncIterator[PrivateMariaDB]:
    """A running private MariaDB, killed and deleted after the test."""
    server = PrivateMariaDB()
    try:
        await server.start()
        yield server
    finally:
        server.cleanup()


@pytest.fixture
async def private_redis() -> AsyncIterator[PrivateRedis]:
    """A running private Redis, killed and deleted after the test."""
    server = PrivateRedis()
    try:
        await server.start()
        yield server
    finally:
        server.cleanup()
