"""Read timeouts for slow clients (slowloris), which uvicorn does not have.

- The request head: `HeadTimeoutProtocol`, uvicorn's httptools protocol (the one `serve`
  runs, passed through uvicorn's public `http=` option) with a deadline: set when a
  connection opens and when a response completes, cleared when a request's headers are
  complete. A client that has not sent a whole head in time is disconnected. uvicorn's own
  keep-alive timeout still closes idle connections sooner.
- The request body: the HTTP guard (server/http_guard.py) gives the whole body one
  deadline from the first read; past it the client gets 408 and the connection is closed.

Both deadlines are kept by a `DeadlineSweep` (one timer per sweep, not one per request) and
read their bounds from `LEADERBOARD_HEADER_TIMEOUT_SECONDS` /
`LEADERBOARD_BODY_TIMEOUT_SECONDS` (server/settings.py); the protocol reads the environment
because uvicorn builds it in each worker process, without the app's settings. Behind a
proxy that buffers requests (the shipped nginx does), the proxy's own client timeouts
apply first.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Generic, TypeVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HEADER_TIMEOUT_VARIABLE = "LEADERBOARD_HEADER_TIMEOUT_SECONDS"
DEFAULT_HEADER_TIMEOUT = 10.0

T = TypeVar("T")


class DeadlineSweep(Generic[T]):
    """Items with deadlines; one timer, every `step` seconds while any is watched, hands the
    late ones to `expire`.

    A timer armed and cancelled per request costs several µs of CPU (the event loop's timer
    heap, with every request in flight in it); a watch is a dict entry. The price is
    precision: an item expires up to one `step` after its deadline.
    """

    def __init__(self, step: float, expire: Callable[[T], None]) -> None:
        self.step = step
        self._expire = expire
        self._waiting: dict[T, float] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def watch(self, item: T, deadline: float, loop: asyncio.AbstractEventLoop) -> None:
        """Expire `item` if it is still watched at `deadline` (loop time, give or take a step)."""
        self._waiting[item] = deadline
        # A timer of another (closed) loop never fires: a sweep reused by a new loop rearms.
        if self._timer is None or self._loop is not loop:
            self._loop = loop
            self._timer = loop.call_later(self.step, self._sweep)

    def forget(self, item: T) -> None:
        """`item` needs no deadline any more."""
        self._waiting.pop(item, None)

    def _sweep(self) -> None:
        self._timer = None
        loop = self._loop
        assert loop is not None  # set by the watch that armed this timer
        now = loop.time()
        late = [item for item, deadline in self._waiting.items() if deadline <= now]
        for item in late:
            del self._waiting[item]
            self._expire(item)
        if self._waiting:
            self._timer = loop.call_later(self.step, self._sweep)


def _close_slow_head(protocol: HeadTimeoutProtocol) -> None:
    if not protocol.transport.is_closing():
        protocol.transport.close()


class HeadTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, disconnecting a client slow to send a request head."""

    _head_seconds: float | None = None
    """The bound, read from the environment once per process (a lookup per request cost
    a few µs)."""
    _head_sweep: DeadlineSweep[HeadTimeoutProtocol] | None = None
    """One sweep for every connection of the process."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_deadline()

    def on_headers_complete(self) -> None:
        self._disarm_head_deadline()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_deadline()
        super().connection_lost(exc)

    def _arm_head_deadline(self) -> None:
        cls = HeadTimeoutProtocol
        if cls._head_sweep is None or cls._head_seconds is None:
            seconds = float(os.environ.get(HEADER_TIMEOUT_VARIABLE, DEFAULT_HEADER_TIMEOUT))
            cls._head_seconds = seconds
            cls._head_sweep = DeadlineSweep(min(1.0, seconds / 5), _close_slow_head)
        cls._head_sweep.watch(self, self.loop.time() + cls._head_seconds, self.loop)

    def _disarm_head_deadline(self) -> None:
        if HeadTimeoutProtocol._head_sweep is not None:
            HeadTimeoutProtocol._head_sweep.forget(self)
