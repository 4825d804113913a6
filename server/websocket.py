"""The GraphQL WebSocket protocols (graphql-transport-ws and the legacy graphql-ws) on
Strawberry's handlers, through their public seams only:

- `send_message`: every error message gets its code, and a payload the subscriptions'
  shortcut encoded already is sent as it is;
- the `schema` the handlers run operations through is `WebSocketOperations`: Strawberry's
  public `stream`/`subscribe`, with the shortcut (schema/fast_subscriptions.py) in front.

Strawberry's `run_operation` / `handle_async_results` then drive the shortcut's streams
exactly as their own (completion, cancellation, clean-up), so no body of theirs is copied.
tests/api/test_strawberry_seams.py fails if Strawberry stops calling these seams.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterable
from contextlib import aclosing
from typing import Any, Protocol, cast

import orjson
from strawberry.schema import BaseSchema
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    Message as TransportMessage,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.subscriptions.protocols.graphql_ws.types import OperationMessage
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

from schema.context import ApiContext
from schema.fast_subscriptions import FastSubscriptions, Payloads


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
        """The subscription's results; Strawberry's signature (legacy graphql-ws calls it)."""
        return await self.stream(
            query,
            variable_values=variable_values,
            context_value=context_value,
            root_value=root_value,
            operation_name=operation_name,
            operation_extensions=operation_extensions,
            allowed_operation_types=(OperationType.SUBSCRIPTION,),
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


class _View(Protocol):
    websocket_operations: WebSocketOperations


class CodedTransportWSHandler(BaseGraphQLTransportWSHandler[ApiContext, None]):
    """graphql-transport-ws, every error message with its code; simple subscriptions shortcut."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.schema = cast(BaseSchema, cast(_View, self.view).websocket_operations)

    async def send_message(self, message: TransportMessage) -> None:
        if message["type"] == "error":
            message = cast(TransportMessage, {**message, "payload": coded(message["payload"])})
        elif message["type"] == "next":
            message = cast(
                TransportMessage, {**message, "payload": _sent_as_is(message["payload"])}
            )
        await super().send_message(message)


class CodedWSHandler(BaseGraphQLWSHandler[ApiContext, None]):
    """Legacy graphql-ws, every error message with its code; simple subscriptions shortcut."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.schema = cast(BaseSchema, cast(_View, self.view).websocket_operations)

    async def send_message(self, message: OperationMessage) -> None:
        if message["type"] == "error":
            message = cast(OperationMessage, {**message, "payload": coded(message["payload"])})
        elif message["type"] == "data":
            message = cast(
                OperationMessage, {**message, "payload": _sent_as_is(message["payload"])}
            )
        await super().send_message(message)
