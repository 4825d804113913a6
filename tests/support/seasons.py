"""Helpers for the seasons tests: in-process instances on one clock, polling, a receiver."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from redis.asyncio.cluster import RedisCluster

from server.resources import Resources, build_resources, running
from server.settings import Settings
from tests.support.history_database import query_history
from tests.support.shared_services import REDIS_URL


class SharedClock:
    """A wall clock that tests move by hand: Unix seconds, shared by in-process instances."""

    def __init__(self, start: datetime) -> None:
        self.now = start.timestamp()

    def __call__(self) -> float:
        return self.now

    def set(self, moment: datetime) -> None:
        """Jump to `moment` (never back)."""
        self.now = max(self.now, moment.timestamp())


def utc(text: str) -> datetime:
    """An ISO instant in UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


async def until(
    condition: Callable[[], Awaitable[bool]], timeout: float = 20.0, what: str = "condition"
) -> None:
    """Poll `condition` until it holds; fail after `timeout` real seconds."""
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        await asyncio.sleep(0.05)


def backend_fixture(cluster_boards: str | None = None) -> Any:
    """A `backend` fixture (assign it to `backend` in a test module): the settings values of
    each backend in turn, Redis + MariaDB, a Redis Cluster + MariaDB (with
    `LEADERBOARD_BOARDS` = `cluster_boards` when given: the sharded boards), and the embedded
    default (SQLite)."""

    @pytest.fixture(params=["redis", "cluster", "embedded"], name="backend")
    def backend(
        request: pytest.FixtureRequest,
        redis_prefix: str,
        mysql_database_url: str,
        sqlite_database_url: str,
    ) -> dict[str, Any]:
        """Settings values of one backend."""
        if request.param == "embedded":
            return {"database_url": sqlite_database_url}
        values: dict[str, Any] = {
            "redis_url": REDIS_URL,
            "key_prefix": redis_prefix,
            "database_url": mysql_database_url,
        }
        if request.param == "cluster":
            values["redis_url"] = request.getfixturevalue("redis_cluster").url()
            values["redis_cluster"] = True
            if cluster_boards is not None:
                values["LEADERBOARD_BOARDS"] = cluster_boards
        return values

    return backend


def season_settings(**values: Any) -> Settings:
    """Settings for in-process seasons tests: fast ticks, a short settle time."""
    defaults: dict[str, Any] = {
        "write_token": "t",
        "seasons_tick_seconds": 0.05,
        "seasons_settle_seconds": 5.0,
        "webhook_poll_seconds": 0.05,
        "heartbeat_seconds": 0.05,
        "heartbeat_timeout_seconds": 2.0,
    }
    return Settings(_env_file=None, **(defaults | values))


@contextlib.asynccontextmanager
async def instance(settings: Settings, clock: Callable[[], float]) -> AsyncIterator[Resources]:
    """One running in-process instance on `clock`."""
    resources = build_resources(settings, clock=clock)
    async with running(resources):
        yield resources


@dataclass
class Receiver:
    """A real local HTTP receiver: holds the first `hangs` requests without answering
    (until `release`), fails the next `failures` with 503, then accepts; checks each
    signature with `secret`."""

    secret: bytes
    failures: int = 0
    hangs: int = 0
    released: asyncio.Event = field(default_factory=asyncio.Event)
    requests: list[tuple[dict[str, str], bytes, bool]] = field(default_factory=list)
    accepted: list[bytes] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None

    async def start(self, port: int = 0) -> None:
        """Listen on 127.0.0.1 (`port` 0: any free port)."""
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", port)
        self.port = self._server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        """Where it listens."""
        return f"http://127.0.0.1:{self.port}/hook"

    def release(self) -> None:
        """Let the held requests go (their connections close unanswered)."""
        self.released.set()

    async def stop(self) -> None:
        """Stop listening (connections are then refused)."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            headers = {
                name.strip().lower(): value.strip()
                for name, _, value in (line.partition(":") for line in lines[1:] if line)
            }
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            expected = "sha256=" + hmac.new(self.secret, body, hashlib.sha256).hexdigest()
            valid = hmac.compare_digest(expected, headers.get("x-leaderboard-signature", ""))
            self.requests.append((headers, body, valid))
            if len(self.requests) <= self.hangs:
                await self.released.wait()
                return
            if len(self.requests) <= self.hangs + self.failures or not valid:
                status = b"503 Service Unavailable" if valid else b"401 Unauthorized"
            else:
                status = b"204 No Content"
                self.accepted.append(body)
            writer.write(
                b"HTTP/1.1 " + status + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
            await writer.drain()
        finally:
            writer.close()


async def delete_period_events(url: str, period: str) -> None:
    """Move a period's raw events out of the history's hot table (delete them, committed)."""
    if url.startswith("sqlite"):
        # In a thread: waiting for SQLite's lock on the event loop would stop the app (on
        # the same loop) from finishing the transaction that holds it.
        await asyncio.to_thread(_delete_sqlite_period, url.split(":///", 1)[1], period)
        return
    await query_history(url, f"DELETE FROM score_events WHERE period = '{period}'")


async def delete_cluster_keys(url: str, prefix: str) -> int:
    """Delete every key under `prefix` on every node of a Redis Cluster; how many."""
    client = RedisCluster.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        for key in keys:
            await client.delete(key)
        return len(keys)
    finally:
        await client.aclose()


def _delete_sqlite_period(path: str, period: str) -> None:
    connection = sqlite3.connect(path, timeout=30)
    try:
        with connection:
            connection.execute("DELETE FROM score_events WHERE period = ?", (period,))
    finally:
        connection.close()
