"""The GraphQL WebSocket protocols (graphql-transport-ws and the legacy graphql-ws) on
Strawberry's handlers, through their public seams only:

- `send_message`: every error message gets its code, and a payload the subscriptions'
  shortcut encoded already is sent as it is;
- the `schema` the handlers run operations through is `WebSocketOperations`: Strawberry's
  public `stream`/`subscribe`, with the shortcut (schema/fast_subscriptions.py) in front.

Strawberry's `run_operation` / `handle_async_results` then drive the shortcut's streams
exactly as their own (completion, cancellation, clean-up), so no body of theirs is copied.
tests/server/test_strawberry_seams.py fails if Strawberry stops calling these seams.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, Iterable
from contextlib import aclosing
from typing import Any, Protocol, cast

import orjson
from strawberry.schema import BaseSchema
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    SubscribeMessage,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    Message as TransportMessage,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.subscriptions.protocols.graphql_ws.types import OperationMessage, StartMessage
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

from schema.context import ApiContext
from schema.fast_subscriptions import FastSubscriptions, Payloads
from server.operation_rules import Request, requested
from server.rate_limit import RateLimits, subscribe_refusal

ID_RULE = "an operation id is 1 to 128 visible ASCII characters"
_ID = re.compile(r"[!-~]{1,128}")


def valid_id(value: object) -> bool:
    """Whether a client's operation id is acceptable (it is echoed in every message)."""
    return isinstance(value, str) and _ID.fullmatch(value) is not None


def _payload_problem(payload: object) -> str | None:
    if not isinstance(payload, dict):
        return "the operation's payload must be an object"
    if not isinstance(payload.get("query"), str):
        return "payload.query must be a string"
    if not isinstance(payload.get("variables"), dict | None):
        return "payload.variables must be an object or null"
    if not isinstance(payload.get("operationName"), str | None):
        return "payload.operationName must be a string or null"
    if not isinstance(payload.get("extensions"), dict | None):
        return "payload.extensions must be an object or null"
    return None


def frame_problem(message: object, start: str, stop: str) -> str | None:
    """What is wrong with a client's frame, checked before Strawberry reads it (it assumes
    the shape: a malformed frame raised inside its handler); None: nothing.

    `start` and `stop` are the protocol's names of the messages that carry an operation id.
    """
    if not isinstance(message, dict):
        return "a message must be a JSON object"
    kind = message.get("type")
    if not isinstance(kind, str):
        return "a message's type must be a string"
    if kind in (start, stop) and not valid_id(message.get("id")):
        return ID_RULE
    if kind == start:
        return _payload_problem(message.get("payload"))
    return None


def coded(errors: object) -> object:
    """Errors Strawberry makes itself (a subscription over the limit...) with the code they
    lack; the schema's own errors already carry theirs."""
    if isinstance(errors, list):
        return [coded(error) for error in errors]
    if isinstance(errors, dict) and "message" in errors:
        extensions = errors.get("extensions") or {}
        if "code" not in extensions:
            return {**errors, "extensions": {**extensions, "code": "BAD_USER_INPUT"}}
    return errors


class WebSocketOperations:
    """What the WebSocket handlers run operations through, in place of the schema: the
    subscriptions' shortcut when it takes the document, else the schema's own `stream`."""

    def __init__(self, schema: BaseSchema, fast: FastSubscriptions) -> None:
        self.schema = schema
        self.fast = fast

    async def stream(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        operation_extensions: dict[str, Any] | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
    ) -> AsyncGenerator[Any, None]:
        """The operation's results; Strawberry's signature (graphql-transport-ws calls it)."""
        requested(Request(websocket=True, operation_name=operation_name))
        payloads = self.fast.open(
            cast(ApiContext, context_value), query, variable_values, operation_name
        )
        if payloads is not None:
            return _pre_encoded(payloads)
        return await self.schema.stream(
            query,
            variable_values=variable_values,
            context_value=context_value,
            root_value=root_value,
            operation_name=operation_name,
            operation_extensions=operation_extensions,
            allowed_operation_types=allowed_operation_types,
        )

    async def subscribe(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> AsyncGenerator[Any, None]:
        """The operation's results; Strawberry's signature (legacy graphql-ws calls it).

        Queries too, not only subscriptions: one rule on both protocols (see
        server/operation_rules.py, which refuses mutations on both).
        """
        return await self.stream(
            query,
            variable_values=variable_values,
            context_value=context_value,
            root_value=root_value,
            operation_name=operation_name,
            operation_extensions=operation_extensions,
        )


async def _pre_encoded(payloads: Payloads) -> AsyncGenerator[ExecutionResult, None]:
    # Each payload is the whole `{"data": ...}` JSON already: carried as the result's data
    # to `_sent_as_is`, which sends it in place of the payload Strawberry builds around it.
    async with aclosing(payloads):
        async for payload in payloads:
            yield ExecutionResult(data=cast(dict[str, object], payload), errors=None)


def _sent_as_is(payload: object) -> object:
    """A result payload, or the shortcut's JSON it carries."""
    if isinstance(payload, dict) and len(payload) == 1:
        data = payload.get("data")
        if isinstance(data, orjson.Fragment):
            return data
    return payload


def _outgoing(message: Any, data_type: str) -> Any:
    """A message as it leaves, on either protocol (`data_type`: its result message type):
    an error's payload with its code, a result's pre-encoded payload as it is."""
    if message["type"] == "error":
        return {**message, "payload": coded(message["payload"])}
    if message["type"] == data_type:
        return {**message, "payload": _sent_as_is(message["payload"])}
    return message


async def _refusal(view: object, websocket: object, message: Any) -> dict[str, object] | None:
    """The error message refusing a subscribe (rate limit), on either protocol; else None.
    The legacy protocol's error payload is one error, graphql-transport-ws' a list."""
    refusal = await subscribe_refusal(cast(_View, view).rate_limits, websocket)
    if refusal is None:
        return None
    payload = [refusal] if message["type"] == "subscribe" else refusal
    return {"id": message.get("id"), "type": "error", "payload": payload}


def _let_go(message: object) -> None:
    """Empty a handled message in place. Strawberry's receive loop keeps its last message
    (a local of the loop) until the next one arrives, which for an idle subscriber is its
    `subscribe`: about 0.5 KiB per connection. What the operation needs (its query,
    variables) was taken from the message while it was handled."""
    if isinstance(message, dict):
        message.clear()


class _View(Protocol):
    websocket_operations: WebSocketOperations
    rate_limits: RateLimits


class CodedTransportWSHandler(BaseGraphQLTransportWSHandler[ApiContext, None]):
    """graphql-transport-ws, every error message with its code; simple subscriptions shortcut."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.schema = cast(BaseSchema, cast(_View, self.view).websocket_operations)

    async def handle_message(self, message: TransportMessage) -> None:
        problem = frame_problem(message, "subscribe", "complete")
        if problem is not None:
            # The protocol's answer to an invalid message: close with 4400 and the reason.
            await self.handle_invalid_message(problem)
            return
        await super().handle_message(message)
        _let_go(message)

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        await super().handle_connection_init(message)
        if self.connection_init_received:
            # Strawberry cancelled the init deadline's task but keeps it, and a cancelled
            # task keeps its frames (its CancelledError's traceback) for the connection's
            # life: about 1 KiB per idle subscriber (docs/performance.md).
            self.connection_init_timeout_task = None

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        refusal = await _refusal(self.view, self.websocket, message)
        if refusal is not None:
            await self.send_message(cast(TransportMessage, refusal))
            return
        await super().handle_subscribe(message)

    async def send_message(self, message: TransportMessage) -> None:
        await super().send_message(cast(TransportMessage, _outgoing(message, "next")))


class CodedWSHandler(BaseGraphQLWSHandler[ApiContext, None]):
    """Legacy graphql-ws, every error message with its code; simple subscriptions shortcut."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.schema = cast(BaseSchema, cast(_View, self.view).websocket_operations)

    async def handle_message(self, message: OperationMessage) -> None:
        problem = frame_problem(message, "start", "stop")
        if problem is not None:
            # The legacy protocol has no close code for it: an error message (with the
            # operation's id when it has a valid one), and the connection stays usable.
            error: dict[str, object] = {"type": "error", "payload": {"message": problem}}
            operation_id = message.get("id") if isinstance(message, dict) else None
            if valid_id(operation_id):
                error["id"] = operation_id
            await self.send_message(cast(OperationMessage, error))
            return
        await super().handle_message(message)
        _let_go(message)

    async def handle_start(self, message: StartMessage) -> None:
        refusal = await _refusal(self.view, self.websocket, message)
        if refusal is not None:
            await self.send_message(cast(OperationMessage, refusal))
            return
        await super().handle_start(message)

    async def send_message(self, message: OperationMessage) -> None:
        await super().send_message(cast(OperationMessage, _outgoing(message, "data")))
