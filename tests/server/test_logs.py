"""Log formatters (text, JSON) and the HTTP guard's request id, in-process."""

from __future__ import annotations

import asyncio
import logging
import re
import sys
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from starlette.types import Message, Receive, Scope, Send

from server import logs
from server.http_guard import HttpGuard
from server.logs import JsonFormatter, TextFormatter
from server.request_id import MAX_LENGTH, accepted_request_id

pytestmark = pytest.mark.unit

GENERATED = re.compile(r"[0-9a-f]{32}")


def record(
    message: str = "hello %s",
    args: Any = ("world",),
    *,
    name: str = "tests.logs",
    level: int = logging.WARNING,
    exc_info: Any = None,
    extra: dict[str, Any] | None = None,
) -> logging.LogRecord:
    made = logging.LogRecord(name, level, __file__, 1, message, args, exc_info)
    for key, value in (extra or {}).items():
        setattr(made, key, value)
    return made


@pytest.fixture
def in_request() -> Iterator[str]:
    """The request id set, as the middleware does while a request is served."""
    token = logs.request_id.set("req-42")
    yield "req-42"
    logs.request_id.reset(token)


def test_json_line_has_the_fields_and_no_request_id_outside_a_request() -> None:
    line = JsonFormatter().format(record())
    assert "\n" not in line
    entry = orjson.loads(line)
    assert entry["level"] == "WARNING"
    assert entry["logger"] == "tests.logs"
    assert entry["message"] == "hello world"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", entry["time"])
    assert entry["pid"] > 0
    assert "request_id" not in entry


def test_json_line_carries_the_current_request_id(in_request: str) -> None:
    entry = orjson.loads(JsonFormatter().format(record()))
    assert entry["request_id"] == in_request


def test_json_line_keeps_extras_and_the_exception_on_one_line() -> None:
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        failure = sys.exc_info()
    line = JsonFormatter().format(
        record(exc_info=failure, extra={"board": "global", "odd": object()})
    )
    assert "\n" not in line
    entry = orjson.loads(line)
    assert entry["board"] == "global"
    assert entry["odd"].startswith("<object object")
    assert "ValueError: boom" in entry["exception"]
    assert "Traceback" in entry["exception"]


def test_json_access_line_has_its_parts_as_fields() -> None:
    access = record(
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "POST", "/graphql", "1.1", 200),
        name="uvicorn.access",
        level=logging.INFO,
    )
    entry = orjson.loads(JsonFormatter().format(access))
    assert entry["message"] == '127.0.0.1:5000 - "POST /graphql HTTP/1.1" 200'
    assert (entry["method"], entry["path"], entry["status"]) == ("POST", "/graphql", 200)
    assert entry["client"] == "127.0.0.1:5000"


def test_text_line_shows_the_request_id_or_a_dash(in_request: str) -> None:
    assert f" WARNING tests.logs [{in_request}] hello world" in TextFormatter().format(record())
    logs.request_id.set(None)
    assert " WARNING tests.logs [-] hello world" in TextFormatter().format(record())


@pytest.mark.parametrize(
    ("presented", "kept"),
    [
        (b"abc-123", True),
        (b"4bf92f3577b34da6a3ce929d0e0e4736", True),
        (b"Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1", False),  # ';'
        (b"a" * MAX_LENGTH, True),
        (b"a" * (MAX_LENGTH + 1), False),
        (b"", False),
        (b"two words", False),
        (b"line\nbreak", False),
        (b'quote"', False),
        ("é".encode(), False),
        (None, False),
    ],
)
def test_only_sane_client_ids_are_kept(presented: bytes | None, kept: bool) -> None:
    accepted = accepted_request_id(presented)
    assert (accepted is not None) == kept
    if kept:
        assert presented is not None
        assert accepted == presented.decode()


class Recorder:
    """An ASGI app that notes the request id it runs under, then answers or accepts."""

    def __init__(self, *, fail: bool = False) -> None:
        self.seen: str | None = None
        self.fail = fail

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.seen = logs.request_id.get()
        if self.fail:
            raise RuntimeError("the app failed")
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})
        elif scope["type"] == "websocket":
            await send({"type": "websocket.accept", "subprotocol": "graphql-transport-ws"})


async def call(
    app: Recorder, scope_type: str = "http", headers: list[tuple[bytes, bytes]] | None = None
) -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:
        raise AssertionError("not read")

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {"type": scope_type, "headers": headers or [], "path": "/graphql"}
    guard = HttpGuard(app, trusted_proxies=(), max_body_bytes=1024, body_timeout_seconds=10)
    await guard(scope, receive, send)
    return sent


def response_id(message: Message) -> str:
    values = [value for name, value in message["headers"] if name == b"x-request-id"]
    assert len(values) == 1, message
    return str(values[0].decode())


async def test_a_sane_client_id_is_used_and_returned() -> None:
    app = Recorder()
    sent = await call(app, headers=[(b"content-type", b"json"), (b"x-request-id", b"abc-123")])
    assert app.seen == "abc-123"
    assert response_id(sent[0]) == "abc-123"
    assert "headers" not in sent[1]  # the body is passed on untouched
    assert logs.request_id.get() is None  # reset once the request is done


@pytest.mark.parametrize("headers", [[], [(b"x-request-id", b"no spaces allowed")]])
async def test_otherwise_an_id_is_made_per_request(headers: list[tuple[bytes, bytes]]) -> None:
    app = Recorder()
    first = response_id((await call(app, headers=headers))[0])
    assert app.seen == first
    assert GENERATED.fullmatch(first)
    second = response_id((await call(app, headers=headers))[0])
    assert second != first


async def test_a_websocket_gets_one_id_returned_in_the_handshake() -> None:
    app = Recorder()
    (accept,) = await call(app, "websocket", [(b"x-request-id", b"overlay-7")])
    assert app.seen == "overlay-7"
    assert accept["subprotocol"] == "graphql-transport-ws"
    assert response_id(accept) == "overlay-7"


async def test_the_id_outlives_a_failure_for_the_servers_error_line() -> None:
    app = Recorder(fail=True)

    async def failing_request() -> str | None:
        with pytest.raises(RuntimeError):
            await call(app, headers=[(b"x-request-id", b"failing-1")])
        # What uvicorn's "Exception in ASGI application" line is formatted with.
        return logs.request_id.get()

    # A task of its own, as the server runs each request.
    assert await asyncio.create_task(failing_request()) == "failing-1"
    assert logs.request_id.get() is None


async def test_lifespan_and_other_scopes_pass_through() -> None:
    app = Recorder()
    assert await call(app, "lifespan") == []
    assert app.seen is None
