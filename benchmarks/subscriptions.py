"""WebSocket subscribers for the fan-out scenario: one connection per subscriber.

Each subscriber speaks `graphql-transport-ws` (what the `graphql-ws` npm library, Apollo
and urql use), subscribes once, and stamps every `next` message with `perf_counter()` as it
arrives. Compression is off (the message rate, not zlib, is what is measured).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException
from websockets.typing import Subprotocol

PROTOCOL = Subprotocol("graphql-transport-ws")

Handler = Callable[[float, dict[str, Any]], None]
"""Called with (arrival time, the `data` of a `next` message)."""


class Subscriber:
    """One WebSocket with one subscription."""

    def __init__(self, url: str, query: str, variables: dict[str, Any], handler: Handler) -> None:
        self.url = url
        self.query = query
        self.variables = variables
        self.handler = handler
        self.ready = asyncio.Event()
        """Set once the first message (the current state) arrived."""
        self.errors: list[str] = []
        self.completed = False
        self._socket: ClientConnection | None = None
        self._task: asyncio.Task[None] | None = None

    async def open(self, timeout: float = 30.0) -> None:
        """Connect, init, subscribe; the reader runs in the background from here on."""
        socket = await connect(
            self.url,
            subprotocols=[PROTOCOL],
            compression=None,
            ping_interval=None,
            open_timeout=timeout,
            max_queue=None,
        )
        self._socket = socket
        await socket.send(orjson.dumps({"type": "connection_init", "payload": {}}).decode())
        async with asyncio.timeout(timeout):
            acknowledged = orjson.loads(await socket.recv())
        if acknowledged.get("type") != "connection_ack":
            raise RuntimeError(f"no connection_ack: {acknowledged}")
        subscribe = {
            "id": "1",
            "type": "subscribe",
            "payload": {"query": self.query, "variables": self.variables},
        }
        await socket.send(orjson.dumps(subscribe).decode())
        self._task = asyncio.create_task(self._read(socket))

    async def _read(self, socket: ClientConnection) -> None:
        perf = time.perf_counter
        try:
            async for raw in socket:
                arrived = perf()
                message = orjson.loads(raw)
                kind = message.get("type")
                if kind == "next":
                    payload = message.get("payload") or {}
                    if payload.get("errors"):
                        self.errors.append(str(payload["errors"])[:300])
                    data = payload.get("data")
                    if data is not None:
                        self.handler(arrived, data)
                        self.ready.set()
                elif kind == "ping":
                    await socket.send('{"type":"pong"}')
                elif kind == "error":
                    self.errors.append(str(message.get("payload"))[:300])
                    self.ready.set()
                elif kind == "complete":
                    self.completed = True
                    self.ready.set()
                    return
        except WebSocketException as error:
            self.errors.append(f"{type(error).__name__}: {error}")
            self.ready.set()

    async def close(self) -> None:
        """Close the socket and stop reading."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._socket is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._socket.close(), 5)


async def open_all(subscribers: list[Subscriber], concurrency: int = 32) -> None:
    """Open every subscriber, at most `concurrency` handshakes at a time."""
    gate = asyncio.Semaphore(concurrency)

    async def one(subscriber: Subscriber) -> None:
        async with gate:
            await subscriber.open()

    await asyncio.gather(*(one(subscriber) for subscriber in subscribers))


async def close_all(subscribers: list[Subscriber]) -> None:
    """Close every subscriber."""
    await asyncio.gather(*(subscriber.close() for subscriber in subscribers))
