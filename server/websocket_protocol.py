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
- the handshake's own headers in the ASGI scope (Upgrade, Connection, Sec-WebSocket-Key,
  -Version and -Extensions): they describe the handshake, which uvicorn has answered; the
  app keeps the others (Authorization, X-Internal-Token, Sec-WebSocket-Protocol, Origin...),
  which it reads for the connection's life (the rate limits, at every subscribe);
- the keepalive ping's timer: uvicorn arms one per connection (a uvloop `TimerHandle`, its
  bound callback and a libuv timer, ~0.5 KiB); `KeepaliveSweep` keeps each connection's next
  ping time in one dict per event loop and sends the pings that are due from one timer
  (at most a second late: a 20 s ping may go at 21 s); the pong deadline stays uvicorn's;
- the attributes themselves: uvicorn's protocol sets 37 of them per connection, more than a
  Python 3.11 instance keeps in its compact shared-key values, so each connection got a
  full dict of its own (~1.6 KiB). Declared as slots here they take 8 bytes each and the
  instance dict stays empty (an attribute a later uvicorn adds still works, in the dict).
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from typing import Any, Protocol, cast

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


class Pinger(Protocol):
    """What the sweep calls: uvicorn's protocol sends a ping and arms its pong deadline."""

    def send_keepalive_ping(self) -> None: ...


class KeepaliveSweep:
    """The next keepalive ping of every connection on one event loop, sent by one timer."""

    def __init__(self, loop: asyncio.AbstractEventLoop, tick: float) -> None:
        self._loop = loop
        self._tick = tick
        self._due: dict[Pinger, float] = {}
        self._timer: asyncio.TimerHandle | None = None

    def __len__(self) -> int:
        return len(self._due)

    def add(self, connection: Pinger, delay: float) -> None:
        """Ping `connection` once `delay` seconds have passed (within a tick after)."""
        self._due[connection] = self._loop.time() + delay
        if self._timer is None:
            self._timer = self._loop.call_later(self._tick, self._sweep)

    def discard(self, connection: Pinger) -> None:
        """Forget `connection`'s next ping (closed, or keepalive stopped)."""
        self._due.pop(connection, None)

    def _sweep(self) -> None:
        self._timer = None
        now = self._loop.time()
        due = [connection for connection, when in self._due.items() if when <= now]
        for connection in due:
            del self._due[connection]
        for connection in due:
            try:
                connection.send_keepalive_ping()
            except Exception as error:  # one connection's failure must not stop the others'
                self._loop.call_exception_handler(
                    {"message": "keepalive ping failed", "exception": error}
                )
        if self._due and self._timer is None:
            self._timer = self._loop.call_later(self._tick, self._sweep)


_SWEEPS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, KeepaliveSweep] = (
    weakref.WeakKeyDictionary()
)


def keepalive_sweep(loop: asyncio.AbstractEventLoop, interval: float) -> KeepaliveSweep:
    """The loop's sweep (made on first use, ticking at most every second)."""
    sweep = _SWEEPS.get(loop)
    if sweep is None:
        sweep = _SWEEPS[loop] = KeepaliveSweep(loop, min(1.0, interval / 4))
    return sweep


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


HANDSHAKE_HEADERS = frozenset(
    {
        b"upgrade",
        b"connection",
        b"sec-websocket-key",
        b"sec-websocket-version",
        b"sec-websocket-extensions",
    }
)
"""Request headers only the handshake reads (lower case, as the ASGI scope has them)."""


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

    def schedule_ping(self) -> None:
        """Schedule the next keepalive ping as uvicorn does, on the loop's sweep."""
        assert self.ping_interval is not None
        delay = max(0.0, self.ping_interval - self.last_ping_rtt)
        keepalive_sweep(self.loop, self.ping_interval).add(self, delay)

    def stop_keepalive(self) -> None:
        """Stop pinging (uvicorn calls it when the connection is lost or shut down)."""
        sweep = _SWEEPS.get(self.loop)
        if sweep is not None:
            sweep.discard(self)
        super().stop_keepalive()

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
            # In place: a Starlette `Headers` the app made already reads this same list.
            headers = cast(list[tuple[bytes, bytes]], self.scope["headers"])
            headers[:] = [pair for pair in headers if pair[0] not in HANDSHAKE_HEADERS]
