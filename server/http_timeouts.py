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
    """Answer 408 (and close) when a request body is not received within `seconds`."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        deadline: float | None = None
        complete = False
        response_started = False

        async def timed_receive() -> Message:
            nonlocal deadline, complete
            if complete:
                return await receive()
            loop = asyncio.get_running_loop()
            deadline = deadline or loop.time() + self.seconds
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise _BodyTimedOut from None
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
