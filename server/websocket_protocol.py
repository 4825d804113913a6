"""The WebSocket protocol `serve` runs: uvicorn's websockets-sansio protocol (its default),
with less kept per open connection (docs/performance.md, "Memory per WebSocket subscriber"):

- the handshake: uvicorn keeps the parsed upgrade request and the handshake response on the
  protocol, and the websockets parser keeps the request, though nothing reads them once the
  `websocket.accept` went out (about 5 KiB of header objects; the ASGI scope keeps its own
  copy of the request headers for the app);
- the receive queue and the "writable" flag: an `asyncio.Queue` is three deques and an
  `asyncio.Event`, an Event one more deque, 760 bytes each even when empty. `Inbox` and
  `Flag` do what uvicorn asks of them (tests/server/test_websocket_protocol.py checks which
  methods it calls) with lists and futures made only while somebody waits;
- the attributes themselves: uvicorn's protocol sets 37 of them per connection, more than a
  Python 3.11 instance keeps in its compact shared-key values, so each connection got a
  full dict of its own (~1.6 KiB). Declared as slots here they take 8 bytes each and the
  instance dict stays empty (an attribute a later uvicorn adds still works, in the dict).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, cast

from uvicorn._types import ASGIReceiveEvent, ASGISendEvent
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol


class Inbox:
    """The part of `asyncio.Queue` uvicorn's receive queue uses: `put_nowait`, `get`, `empty`."""

    __slots__ = ("_getters", "_items")

    def __init__(self) -> None:
        self._items: list[ASGIReceiveEvent] = []
        self._getters: list[asyncio.Future[None]] = []

    def empty(self) -> bool:
        """Whether nothing is queued."""
        return not self._items

    def put_nowait(self, item: ASGIReceiveEvent) -> None:
        """Queue an event and wake one waiting `get`."""
        self._items.append(item)
        self._wake_one()

    async def get(self) -> ASGIReceiveEvent:
        """The oldest event, once there is one."""
        while not self._items:
            getter = asyncio.get_running_loop().create_future()
            self._getters.append(getter)
            try:
                await getter
            except BaseException:
                with contextlib.suppress(ValueError):
                    self._getters.remove(getter)
                # Woken and then cancelled: the event it was woken for goes to the next getter.
                if self._items:
                    self._wake_one()
                raise
        return self._items.pop(0)

    def _wake_one(self) -> None:
        while self._getters:
            getter = self._getters.pop(0)
            if not getter.done():
                getter.set_result(None)
                return


class Flag:
    """The part of `asyncio.Event` uvicorn's "writable" flag uses: `set`, `clear`, `wait`."""

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = False
        self._waiters: list[asyncio.Future[None]] = []

    def is_set(self) -> bool:
        """Whether the flag is set."""
        return self._set

    def set(self) -> None:
        """Set the flag and wake every waiter."""
        self._set = True
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        """Clear the flag."""
        self._set = False

    async def wait(self) -> bool:
        """Return once the flag is set (at once when it is)."""
        if self._set:
            return True
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)
        return True


UVICORN_ATTRIBUTES = (
    "app",
    "app_state",
    "asgi_version",
    "client",
    "close_sent",
    "close_timeout",
    "close_timer",
    "config",
    "conn",
    "connections",
    "curr_msg_data_type",
    "default_headers",
    "disconnected",
    "frames",
    "handshake_complete",
    "handshake_initiated",
    "initial_response",
    "last_ping_rtt",
    "logger",
    "loop",
    "pending_ping_payload",
    "ping_interval",
    "ping_sent_at",
    "ping_timeout",
    "ping_timer",
    "pong_timer",
    "queue",
    "read_paused",
    "request",
    "response",
    "root_path",
    "scheme",
    "scope",
    "server",
    "tasks",
    "transport",
    "writable",
)
"""Every attribute uvicorn's websockets-sansio protocol sets on itself (uvicorn 0.55;
tests/server/test_websocket_protocol.py fails when one is missing)."""


class LeanWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets-sansio protocol, keeping less for each open connection."""

    __slots__ = UVICORN_ATTRIBUTES

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Typed as uvicorn's: they stand in for the asyncio objects where uvicorn uses them.
        self.queue = cast("asyncio.Queue[ASGIReceiveEvent]", Inbox())
        writable = Flag()
        writable.set()
        self.writable = cast(asyncio.Event, writable)

    async def send(self, message: ASGISendEvent) -> None:
        """Send as uvicorn does; once the handshake is complete, drop its request and response."""
        await super().send(message)
        if self.handshake_complete and getattr(self, "request", None) is not None:
            # uvicorn reads them only until the handshake completes (handle_connect, send).
            # The request's headers are emptied in place: the websockets parser's generator
            # frame keeps the request itself for as long as the connection lives.
            self.request.headers.clear()
            del self.request
            del self.response
