"""What a GraphQL request may ask for on its transport, checked with the document parsed:

- a document with several operations must name the one to run (`operationName`), as the
  GraphQL spec requires (Strawberry would run the first);
- subscriptions need a WebSocket: over HTTP they are the client's mistake;
- mutations go over HTTP POST, on both WebSocket protocols alike (graphql-transport-ws ran
  them, legacy graphql-ws refused them): a write is one request with its token, answered
  once, and never tied to a long-lived socket's handshake.

Each refusal is a GraphQL error with code BAD_USER_INPUT, before anything runs. Whoever
hands an operation to the schema says what it came over with `requested()`: the HTTP view
and server/websocket.py. An operation nobody described (a direct `schema.execute`) is not
checked here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass

from graphql import DocumentNode, GraphQLError, OperationDefinitionNode, OperationType
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext


@dataclass(frozen=True, slots=True)
class Request:
    """How an operation arrived: over a WebSocket or HTTP, with or without operationName."""

    websocket: bool
    operation_name: str | None


_REQUEST: ContextVar[Request | None] = ContextVar("graphql_request", default=None)


def requested(request: Request | None) -> None:
    """Describe the operation this task hands to the schema next (None: nothing known)."""
    _REQUEST.set(request)


@contextlib.contextmanager
def request_scope() -> Iterator[None]:
    """What `requested` says inside holds only inside (an HTTP request's handling)."""
    token = _REQUEST.set(None)
    try:
        yield
    finally:
        _REQUEST.reset(token)


def selected_operation(context: ExecutionContext) -> OperationDefinitionNode | None:
    """The operation the request runs: the one it names, or the document's only one; None
    when it names none of several (or a name the document lacks)."""
    document = context.graphql_document
    if document is None:
        return None
    request = _REQUEST.get()
    # Strawberry's context falls back to the first operation's name when none was given.
    name = context.operation_name if request is None else request.operation_name
    operations = _operations(document)
    if name is None:
        return operations[0] if len(operations) == 1 else None
    return next((operation for operation in operations if _name(operation) == name), None)


class TransportRules(SchemaExtension):
    """Refuses, before validation runs, what the module docstring lists."""

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        request = _REQUEST.get()
        if request is not None and not context.pre_execution_errors:
            problem = _problem(context, request)
            if problem is not None:
                context.pre_execution_errors = [
                    GraphQLError(problem, extensions={"code": "BAD_USER_INPUT"})
                ]
        yield


def _problem(context: ExecutionContext, request: Request) -> str | None:
    document = context.graphql_document
    if document is None:
        return None
    if request.operation_name is None and len(_operations(document)) > 1:
        return "Must provide operation name if query contains multiple operations."
    operation = selected_operation(context)
    if operation is None:
        return None  # an unknown name: Strawberry refuses it
    kind = operation.operation
    if kind is OperationType.SUBSCRIPTION and not request.websocket:
        return "subscriptions need a WebSocket (graphql-transport-ws or graphql-ws)"
    if kind is OperationType.MUTATION and request.websocket:
        return "mutations are sent with HTTP POST, not over a WebSocket"
    return None


def _operations(document: DocumentNode) -> list[OperationDefinitionNode]:
    return [
        definition
        for definition in document.definitions
        if isinstance(definition, OperationDefinitionNode)
    ]


def _name(operation: OperationDefinitionNode) -> str | None:
    return operation.name.value if operation.name else None
