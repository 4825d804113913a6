"""Slow clients (issue 17 G) against a real `leaderboard serve`: 20 slowloris connections
(a request head trickled a line at a time) and 10 slow bodies are all closed within a
bounded time, and the service keeps answering everyone else. 5 more send a body's first
byte and then nothing: the body deadline must fire while the app waits in `receive`."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from tests.support.service_fixtures import ProcessFactory

pytestmark = pytest.mark.integration

TIMEOUT_SECONDS = 1.0
BOUND_SECONDS = 4.0
"""Every slow connection must be closed this long after it opened (its timeout + slack)."""


Connection = tuple[float, asyncio.StreamReader, asyncio.StreamWriter]


async def connect(port: int) -> Connection:
    """A connection to the service, with when it opened."""
    opened = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    return opened, reader, writer


async def trickle_until_closed(
    connection: Connection, first: bytes, drip: bytes
) -> tuple[float, bytes]:
    """Send `first`, then `drip` every 0.2 s, until the server closes; (seconds since the
    connection opened, what it received)."""
    opened, reader, writer = connection
    writer.write(first)
    received = b""
    try:
        while time.monotonic() - opened < 3 * BOUND_SECONDS:
            try:
                chunk = await asyncio.wait_for(reader.read(4096), 0.2)
            except TimeoutError:
                writer.write(drip)
                await writer.drain()
                continue
            if not chunk:
                break
            received += chunk
    except ConnectionError:
        pass
    finally:
        writer.close()
    return time.monotonic() - opened, received


async def test_slowloris_and_slow_bodies_are_disconnected(
    service_process: ProcessFactory, tmp_path: Path
) -> None:
    service = service_process(
        {
            "LEADERBOARD_WRITE_TOKEN": "t",
            "LEADERBOARD_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'lb.db'}",
            "LEADERBOARD_HEADER_TIMEOUT_SECONDS": str(TIMEOUT_SECONDS),
            "LEADERBOARD_BODY_TIMEOUT_SECONDS": str(TIMEOUT_SECONDS),
        }
    )
    await service.start()
    head = b"POST /graphql HTTP/1.1\r\nHost: x\r\n"
    body_head = (
        b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n{"
    )
    connections = [await connect(service.port) for _ in range(35)]
    slow = [trickle_until_closed(one, head, b"X-a: b\r\n") for one in connections[:20]]
    slow += [trickle_until_closed(one, body_head, b" ") for one in connections[20:30]]
    slow += [trickle_until_closed(one, body_head, b"") for one in connections[30:]]
    async with httpx.AsyncClient(base_url=service.url) as client:
        # Everyone else is served meanwhile.
        answered = asyncio.create_task(client.post("/graphql", json={"query": "{ __typename }"}))
        results = await asyncio.gather(*slow)
        assert (await answered).json() == {"data": {"__typename": "Query"}}
    seconds = [elapsed for elapsed, _ in results]
    assert max(seconds) < BOUND_SECONDS, seconds
    assert min(seconds) >= TIMEOUT_SECONDS * 0.9, seconds  # closed by the timeouts
    for _, received in results[20:]:
        assert received.startswith(b"HTTP/1.1 408"), received
