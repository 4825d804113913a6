"""Small GraphQL clients for tests: HTTP, and WebSocket over both subscription protocols."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Protocol

import httpx

TRANSPORT_WS = "graphql-transport-ws"
LEGACY_WS = "graphql-ws"

Json = dict[str, Any]


class GraphQLHttp:
    """POSTs GraphQL documents to /graphql."""

    def __init__(self, client: httpx.AsyncClient, token: str | None = None) -> None:
        self.client = client
        self.token = token

    async def post(
        self, query: str, variables: Json | None = None, *, token: str | None = None
    ) -> httpx.Response:
        """Send one document; `token` (or the client's) goes in X-Internal-Token."""
        headers = {}
        presented = token if token is not None else self.token
        if presented:
            headers["X-Internal-Token"] = presented
        return await self.client.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )

    async def execute(self, query: str, variables: Json | None = None, **options: Any) -> Json:
        """Send a document and return its JSON body (status must not be 5xx)."""
        response = await self.post(query, variables, **options)
        assert response.status_code < 500, response.text
        body: Json = response.json()
        return body

    async def data(self, query: str, variables: Json | None = None, **options: Any) -> Json:
        """Send a document that must succeed; return its data."""
        body = await self.execute(query, variables, **options)
        assert "errors" not in body, body
        data: Json = body["data"]
        return data

    async def error_codes(
        self, query: str, variables: Json | None = None, **options: Any
    ) -> list[str]:
        """Send a document that must fail; return the error codes."""
        body = await self.execute(query, variables, **options)
        assert body.get("errors"), body
        return [error["extensions"]["code"] for error in body["errors"]]


class TextSocket(Protocol):
    """What both WebSocket libraries used in tests offer, adapted."""

    async def send_text(self, text: str) -> None: ...
    async def receive_text(self) -> str: ...


class Subscription:
    """One GraphQL subscription over a WebSocket, in either protocol."""

    def __init__(self, socket: TextSocket, protocol: str) -> None:
        self.socket = socket
        self.protocol = protocol
        self._next_id = 0
        self.completed: set[str] = set()
        """Ids of the subscriptions the server completed."""

    async def init(self, payload: Json | None = None) -> None:
        """Open the GraphQL connection and wait for the server's ack."""
        await self._send({"type": "connection_init", "payload": payload or {}})
        message = await self._receive()
        assert message["type"] == "connection_ack", message

    async def start(self, query: str, variables: Json | None = None) -> str:
        """Start a subscription and return its id."""
        self._next_id += 1
        operation_id = str(self._next_id)
        kind = "subscribe" if self.protocol == TRANSPORT_WS else "start"
        await self._send(
            {
                "id": operation_id,
                "type": kind,
                "payload": {"query": query, "variables": variables or {}},
            }
        )
        return operation_id

    async def stop(self, operation_id: str) -> None:
        """Stop a subscription."""
        kind = "complete" if self.protocol == TRANSPORT_WS else "stop"
        await self._send({"id": operation_id, "type": kind})

    async def next(self, timeout: float = 5.0) -> Json:
        """The next result's payload (`data` and maybe `errors`); errors messages too."""
        while True:
            message = await asyncio.wait_for(self._receive(), timeout)
            kind = message["type"]
            if kind in ("next", "data"):
                payload: Json = message["payload"]
                return payload
            if kind == "error":
                errors = message["payload"]
                return {"errors": errors if isinstance(errors, list) else [errors]}
            if kind == "complete":
                self.completed.add(message["id"])
                continue
            if kind in ("ka", "ping", "pong"):
                if kind == "ping":
                    await self._send({"type": "pong"})
                continue
            raise AssertionError(f"unexpected message {message}")

    async def nothing_within(self, seconds: float) -> None:
        """Assert that no result arrives for a while."""
        try:
            message = await self.next(timeout=seconds)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected result {message}")

    async def _send(self, message: Json) -> None:
        await self.socket.send_text(json.dumps(message))

    async def _receive(self) -> Json:
        message: Json = json.loads(await self.socket.receive_text())
        return message
