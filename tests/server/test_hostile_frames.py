"""Malformed WebSocket frames (issue 17 D, J): refused with the protocol's answer, never an
exception inside the handler (a traceback in the log and a 1006 drop).

graphql-transport-ws closes with 4400 and the reason; legacy graphql-ws answers an error
message with code BAD_USER_INPUT (with the operation's id only when it is a valid one) and
stays usable. Operation ids are bounded: 1 to 128 visible ASCII characters.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from httpx_ws import AsyncWebSocketSession, WebSocketDisconnect, aconnect_ws
from httpx_ws.transport import ASGIWebSocketTransport
from starlette.applications import Starlette

from tests.support.graphql_client import LEGACY_WS, TRANSPORT_WS

pytestmark = pytest.mark.integration

QUERY = "subscription { topPlayersChanged(limit: 1) { rank } }"
HUGE_ID = "x" * 100_000

# Each frame, and whether it is sent before connection_init (the unauthenticated case).
FRAMES: list[Any] = [
    [1],
    5,
    None,
    "text",
    {},
    {"type": 7},
    {"type": "subscribe", "id": "1", "payload": None},
    {"type": "subscribe", "id": {"an": "object"}, "payload": {"query": QUERY}},
    {"type": "subscribe", "payload": {"query": QUERY}},
    {"type": "subscribe", "id": "1", "payload": {"query": 5}},
    {"type": "subscribe", "id": "1", "payload": {"query": QUERY, "variables": [1]}},
    {"type": "subscribe", "id": "1", "payload": {"query": QUERY, "operationName": 3}},
    {"type": "subscribe", "id": HUGE_ID, "payload": {"query": QUERY}},
    {"type": "subscribe", "id": "", "payload": {"query": QUERY}},
    {"type": "subscribe", "id": "a b", "payload": {"query": QUERY}},
    {"type": "subscribe", "id": "é", "payload": {"query": QUERY}},
    {"type": "complete"},
    {"type": "complete", "id": 5},
]


def legacy(frame: Any) -> Any:
    """The same frame in the legacy protocol's vocabulary."""
    if isinstance(frame, dict) and frame.get("type") in ("subscribe", "complete"):
        return {**frame, "type": "start" if frame["type"] == "subscribe" else "stop"}
    return frame


@pytest.fixture
def backend() -> str:
    """In-process stores: frames are refused before any store is asked."""
    return "embedded"


@contextlib.asynccontextmanager
async def connected(app: Starlette, protocol: str) -> AsyncIterator[AsyncWebSocketSession]:
    async with httpx.AsyncClient(
        transport=ASGIWebSocketTransport(app), base_url="http://testserver"
    ) as client:
        connecting: contextlib.AbstractAsyncContextManager[AsyncWebSocketSession] = aconnect_ws(
            "/graphql", client, subprotocols=[protocol]
        )
        async with connecting as socket:
            yield socket


async def send(socket: AsyncWebSocketSession, message: Any) -> None:
    await socket.send_text(json.dumps(message))


async def receive(socket: AsyncWebSocketSession) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await socket.receive_text(timeout=5))
    return message


@pytest.mark.parametrize("initialised", [False, True])
@pytest.mark.parametrize("frame", FRAMES, ids=lambda frame: json.dumps(frame)[:40])
async def test_graphql_transport_ws_closes_4400(
    app: Starlette, frame: Any, initialised: bool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with connected(app, TRANSPORT_WS) as socket:
        if initialised:
            await send(socket, {"type": "connection_init", "payload": {}})
            assert (await receive(socket))["type"] == "connection_ack"
        await send(socket, frame)
        with pytest.raises(WebSocketDisconnect) as closed:
            await receive(socket)
    assert closed.value.code == 4400
    assert len(closed.value.reason or "") < 123
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert not [record for record in caplog.records if record.exc_info]


@pytest.mark.parametrize("frame", FRAMES, ids=lambda frame: json.dumps(frame)[:40])
async def test_legacy_graphql_ws_answers_an_error_and_stays_usable(
    app: Starlette, frame: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with connected(app, LEGACY_WS) as socket:
        await send(socket, {"type": "connection_init", "payload": {}})
        assert (await receive(socket))["type"] == "connection_ack"
        await send(socket, legacy(frame))
        error = await receive(socket)
        assert error["type"] == "error"
        assert error["payload"]["extensions"]["code"] == "BAD_USER_INPUT"
        assert HUGE_ID not in json.dumps(error)
        # Still usable: a valid subscription answers.
        await send(socket, {"type": "start", "id": "ok", "payload": {"query": QUERY}})
        answer = await receive(socket)
        assert (answer["type"], answer["id"]) == ("data", "ok")
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert not [record for record in caplog.records if record.exc_info]


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_an_id_at_the_bound_is_accepted(app: Starlette, protocol: str) -> None:
    operation_id = "~" * 128
    async with connected(app, protocol) as socket:
        await send(socket, {"type": "connection_init", "payload": {}})
        assert (await receive(socket))["type"] == "connection_ack"
        start = "subscribe" if protocol == TRANSPORT_WS else "start"
        await send(socket, {"type": start, "id": operation_id, "payload": {"query": QUERY}})
        answer = await receive(socket)
        assert answer["id"] == operation_id
        assert answer["type"] in ("next", "data")
