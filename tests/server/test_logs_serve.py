"""A real `leaderboard serve` with LEADERBOARD_LOG_FORMAT=json: JSON lines with request ids."""

from __future__ import annotations

import re
import secrets
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect

from tests.support.graphql_client import TRANSPORT_WS, Subscription
from tests.support.operations import INCREMENT
from tests.support.service_fixtures import TOKEN, ProcessFactory, WebSocketText
from tests.support.shared_services import delete_prefix

pytestmark = pytest.mark.integration

GENERATED = re.compile(r"[0-9a-f]{32}")


def parse_lines(output: str) -> list[dict[str, Any]]:
    """Every line the process wrote (stdout and stderr), each of which must be JSON."""
    entries = []
    for number, line in enumerate(output.splitlines(), 1):
        try:
            entry = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise AssertionError(f"line {number} is not JSON: {line!r}\n{output}") from None
        assert isinstance(entry, dict), line
        assert {"time", "level", "logger", "message"} <= entry.keys(), line
        entries.append(entry)
    return entries


async def increment(
    client: httpx.AsyncClient, request_id: str, username: str, delta: int
) -> httpx.Response:
    response = await client.post(
        "/graphql",
        json={"query": INCREMENT, "variables": {"username": username, "delta": delta}},
        headers={"X-Internal-Token": TOKEN, "X-Request-ID": request_id},
    )
    assert response.status_code == 200, response.text
    assert "errors" not in response.json(), response.text
    return response


async def test_every_line_is_json_and_carries_the_request_id(
    service_process: ProcessFactory, redis_mysql_environment: dict[str, str]
) -> None:
    environment = redis_mysql_environment | {
        "LEADERBOARD_LOG_FORMAT": "json",
        # Answer once MySQL has the event: the rebuild below must find it there.
        "LEADERBOARD_ACK": "persisted",
    }
    process = service_process(environment)
    await process.start()
    write_id, rebuild_id, socket_id = (f"{name}-{secrets.token_hex(4)}" for name in "wrs")

    async with httpx.AsyncClient(base_url=process.url) as client:
        response = await increment(client, write_id, "ana", 5)
        assert response.headers["x-request-id"] == write_id

        refused = await client.get("/healthz", headers={"X-Request-ID": "x" * 200})
        assert GENERATED.fullmatch(refused.headers["x-request-id"])

        # Redis loses the board: the next write rebuilds it from MySQL, under that write's id.
        await delete_prefix(environment["LEADERBOARD_KEY_PREFIX"])
        response = await increment(client, rebuild_id, "ana", 2)
        assert response.json()["data"]["incrementScore"]["score"] == 7

    ws_url = process.url.replace("http", "ws", 1) + "/graphql"
    async with connect(
        ws_url,
        subprotocols=[TRANSPORT_WS],  # type: ignore[list-item]
        additional_headers={"X-Request-ID": socket_id},
    ) as socket:
        assert socket.response is not None
        assert socket.response.headers["X-Request-ID"] == socket_id
        await Subscription(WebSocketText(socket), TRANSPORT_WS).init()
    assert await process.terminate()

    entries = parse_lines(process.log())
    assert any(entry["logger"] == "uvicorn.error" for entry in entries)
    assert "request_id" not in entries[0]  # the start, outside any request
    (write,) = [entry for entry in entries if entry.get("request_id") == write_id]
    assert write["logger"] == "uvicorn.access"
    assert (write["method"], write["path"], write["status"]) == ("POST", "/graphql", 200)
    rebuilt = [entry for entry in entries if entry["message"].startswith("rebuilt global/")]
    assert [entry.get("request_id") for entry in rebuilt] == [rebuild_id], rebuilt
    socket_lines = [entry for entry in entries if entry.get("request_id") == socket_id]
    assert any("WebSocket /graphql" in entry["message"] for entry in socket_lines), socket_lines
