"""Fixtures for tests against real `leaderboard serve` processes (a root conftest plugin)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import ClientConnection

from tests.support.graphql_client import GraphQLHttp
from tests.support.service_process import ServiceProcess
from tests.support.shared_services import REDIS_URL

TOKEN = "process-test-token"
BOARDS = "global:monthly,alltime:never"


class WebSocketText:
    """Adapts a `websockets` connection to the tests' GraphQL subscription client."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection

    async def send_text(self, text: str) -> None:
        await self.connection.send(text)

    async def receive_text(self) -> str:
        message = await self.connection.recv()
        return message if isinstance(message, str) else message.decode()


@contextlib.asynccontextmanager
async def served(
    process: ServiceProcess, *, timeout: float = 5.0
) -> AsyncIterator[tuple[httpx.AsyncClient, GraphQLHttp]]:
    """Start `process`; an HTTP client on it, and a GraphQL client on that one carrying
    the write token (`timeout`: each request's, httpx's default unless given)."""
    await process.start()
    async with httpx.AsyncClient(base_url=process.url, timeout=timeout) as client:
        yield client, GraphQLHttp(client, token=TOKEN)


@pytest.fixture
def redis_mysql_environment(redis_prefix: str, mysql_database_url: str) -> dict[str, str]:
    """Environment for a process on the shared Redis (own prefix) and a fresh MariaDB database."""
    return {
        "LEADERBOARD_REDIS_URL": REDIS_URL,
        "LEADERBOARD_KEY_PREFIX": redis_prefix,
        "LEADERBOARD_DATABASE_URL": mysql_database_url,
        "LEADERBOARD_WRITE_TOKEN": TOKEN,
        "LEADERBOARD_BOARDS": BOARDS,
        "LEADERBOARD_HEARTBEAT_SECONDS": "0.1",
        "LEADERBOARD_HEARTBEAT_TIMEOUT_SECONDS": "3",
    }


ProcessFactory = Callable[..., ServiceProcess]


@pytest.fixture
async def service_process(tmp_path: Path) -> AsyncIterator[ProcessFactory]:
    """Make `leaderboard serve` processes; every one still running is killed at the end."""
    processes: list[ServiceProcess] = []

    def make(environment: dict[str, str], *, workers: int = 1) -> ServiceProcess:
        process = ServiceProcess(
            environment, tmp_path / f"service-{len(processes)}.log", workers=workers
        )
        processes.append(process)
        return process

    yield make
    for process in processes:
        await process.__aexit__(None, None, None)
