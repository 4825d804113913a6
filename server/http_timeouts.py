"""Read timeouts for slow clients (slowloris), which uvicorn does not have.

- The request head: `HeadTimeoutProtocol`, uvicorn's httptools protocol (the one `serve`
  runs, passed through uvicorn's public `http=` option) with one timer: armed when a
  connection opens and when a response completes, cleared when a request's headers are
  complete. A client that has not sent a whole head in time is disconnected. uvicorn's own
  keep-alive timeout still closes idle connections sooner.
- The request body: `BodyReadTimeout`, ASGI middleware that gives the whole body one
  deadline from the first read; past it the client gets 408 and the connection is closed.

Both read their bounds from `LEADERBOARD_HEADER_TIMEOUT_SECONDS` /
`LEADERBOARD_BODY_TIMEOUT_SECONDS` (server/settings.py); the protocol reads the environment
because uvicorn builds it in each worker process, without the app's settings. Behind a
proxy that buffers requests (the shipped nginx does), the proxy's own client timeouts
apply first.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HEADER_TIMEOUT_VARIABLE = "LEADERBOARD_HEADER_TIMEOUT_SECONDS"
DEFAULT_HEADER_TIMEOUT = 10.0


class HeadTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, disconnecting a client slow to send a request head."""

    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def on_headers_complete(self) -> None:
        self._disarm_head_timer()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    def _arm_head_timer(self) -> None:
        self._disarm_head_timer()
        seconds = float(os.environ.get(HEADER_TIMEOUT_VARIABLE, DEFAULT_HEADER_TIMEOUT))
        self._head_timer = self.loop.call_later(seconds, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self.transport.close()


class BodyReadTimeout:
    """Answer 408 (and close) when a request body is not received within `seconds`.

    The deadline counts from the first read. Requests waiting for body bytes are checked
    by one periodic sweep per instance (`_Sweeper`), not by a timer per request: a timer
    armed and cancelled on every request cost about 12 µs of CPU per `incrementScore`
    (the event loop's timer heap, with every request in flight in it), a tenth of the
    whole request. The sweep's step makes the bound at most a fifth later than asked.
    """

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds
        self._sweeper = _Sweeper(step=min(1.0, seconds / 5))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        deadline: float | None = None
        complete = False
        response_started = False
        sweeper = self._sweeper

        async def timed_receive() -> Message:
            nonlocal deadline, complete
            if complete:
                return await receive()
            now = asyncio.get_running_loop().time()
            deadline = deadline or now + self.seconds
            if now >= deadline:
                raise _BodyTimedOut
            task = asyncio.current_task()
            assert task is not None  # an ASGI app always runs in a task
            sweeper.watch(task, deadline)
            try:
                message = await receive()
            except asyncio.CancelledError:
                if sweeper.expired(task):
                    raise _BodyTimedOut from None
                raise
            finally:
                sweeper.forget(task)
            if message["type"] != "http.request" or not message.get("more_body", False):
                complete = True
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal response_started
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, timed_receive, tracked_send)
        except _BodyTimedOut:
            if not response_started:
                await _timed_out(self.seconds)(scope, receive, send)


class _Sweeper:
    """Tasks waiting for body bytes, with their deadlines; one timer cancels the late ones."""

    def __init__(self, step: float) -> None:
        self.step = step
        self._waiting: dict[asyncio.Task[Any], float] = {}
        self._expired: set[asyncio.Task[Any]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def watch(self, task: asyncio.Task[Any], deadline: float) -> None:
        """Cancel `task` if it is still waiting at `deadline` (give or take a step)."""
        self._waiting[task] = deadline
        loop = task.get_loop()
        # A timer of another (closed) loop never fires: an app reused by a new loop rearms.
        if self._timer is None or self._loop is not loop:
            self._loop = loop
            self._timer = loop.call_later(self.step, self._sweep)

    def forget(self, task: asyncio.Task[Any]) -> None:
        """`task` stopped waiting."""
        self._waiting.pop(task, None)

    def expired(self, task: asyncio.Task[Any]) -> bool:
        """Whether the sweep cancelled `task` (and undo that cancellation: it is handled)."""
        if task not in self._expired:
            return False
        self._expired.discard(task)
        task.uncancel()
        return True

    def _sweep(self) -> None:
        self._timer = None
        now = asyncio.get_running_loop().time()
        for task, deadline in list(self._waiting.items()):
            if deadline <= now:
                del self._waiting[task]
                self._expired.add(task)
                task.cancel()
        if self._waiting:
            self._timer = asyncio.get_running_loop().call_later(self.step, self._sweep)


class _BodyTimedOut(Exception):
    pass


def _timed_out(seconds: float) -> JSONResponse:
    return JSONResponse(
        {
            "errors": [
                {
                    "message": f"request body not received within {seconds:g} s",
                    "extensions": {"code": "BAD_USER_INPUT"},
                }
            ]
        },
        status_code=408,
        headers={"Connection": "close"},
    )
