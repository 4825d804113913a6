"""`X-Request-ID`: one id per HTTP request or WebSocket connection, in its log lines and answer.

The client's id is kept when it is sane (1 to 128 characters of `A-Z a-z 0-9 . _ : + / = -`,
so it can neither break a log line nor a header); otherwise a new one is made. The HTTP
guard (server/http_guard.py) sets it in `server.logs.request_id` while the request is served
and returns it in the `X-Request-ID` response header (for a WebSocket, in the handshake's
answer).
"""

from __future__ import annotations

import os
import re
from typing import Final

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
