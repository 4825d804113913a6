"""`X-Request-ID`: one id per HTTP request or WebSocket connection, in its log lines and answer.

The client's id is kept when it is sane (1 to 128 characters of `A-Z a-z 0-9 . _ : + / = -`,
so it can neither break a log line nor a header); otherwise a new one is made. It is set
in `server.logs.request_id` while the request is served and returned in the
`X-Request-ID` response header (for a WebSocket, in the handshake's answer).
"""

from __future__ import annotations

import os
import re
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server import logs

HEADER: Final = b"x-request-id"
MAX_LENGTH: Final = 128

_SANE: Final = re.compile(rb"[A-Za-z0-9._:+/=-]{1,%d}" % MAX_LENGTH)


def new_request_id() -> str:
    """A fresh random id: 32 hex digits."""
    return os.urandom(16).hex()


def accepted_request_id(presented: bytes | None) -> str | None:
    """The client's id when it is sane, else None."""
    if presented is None or _SANE.fullmatch(presented) is None:
        return None
    return presented.decode("ascii")


class RequestId:
    """Pure ASGI middleware: sets the request id for the request and returns it in a header."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        presented = next((value for name, value in scope["headers"] if name == HEADER), None)
        current = accepted_request_id(presented) or new_request_id()
        header = (HEADER, current.encode("ascii"))
        # The message that opens the answer: the HTTP response, or the WebSocket handshake.
        opening = "http.response.start" if scope["type"] == "http" else "websocket.accept"

        async def send_with_id(message: Message) -> None:
            if message["type"] == opening:
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        token = logs.request_id.set(current)
        await self.app(scope, receive, send_with_id)
        # Reset only after a normal return: when the app raised, the server's
        # "Exception in ASGI application" line is written next, in this same context,
        # and must still carry the id. (Servers run each request in a task of its own.)
        logs.request_id.reset(token)
