"""The ASGI application: /graphql (GraphiQL, HTTP, WebSocket), /healthz, /readyz, /metrics,
and the live overlay (/overlay/{board}) with its static files (/static)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any, cast

import orjson
from cross_web import HTTPException
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    Message as TransportMessage,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import SubscribeMessage
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.subscriptions.protocols.graphql_ws.types import OperationMessage, StartMessage
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from resolvers.auth import token_from_headers
from schema.build import build_schema
from schema.context import ApiContext
from schema.fast_path import FastPath
from schema.fast_subscriptions import FastSubscriptions, Payloads
from server import overlay
from server import resources as lifecycle
from server.graphiql import graphiql_response
from server.rate_limit import RateLimit, RateLimits, subscribe_refusal
from server.request_id import RequestId
from server.resources import Resources
from server.settings import Settings


def _coded(errors: object) -> object:
    """Errors Strawberry makes itself (a subscription over the limit...) with the code they
    lack; the schema's own errors already carry theirs."""
    if isinstance(errors, list):
        return [_coded(error) for error in errors]
    if isinstance(errors, dict) and "message" in errors:
        extensions = errors.get("extensions") or {}
        if "code" not in extensions:
            return {**errors, "extensions": {**extensions, "code": "BAD_USER_INPUT"}}
    return errors


def _fast_payloads(
    view: object, context: ApiContext, query: object, variables: object, operation_name: object
) -> Payloads | None:
    """The subscriptions' shortcut (schema/fast_subscriptions.py); None: Strawberry runs it."""
    return cast("GraphQLApp", view).fast_subscriptions.open(
        context, query, variables, operation_name
    )


def _limits(view: object) -> RateLimits:
    return cast("GraphQLApp", view).resources.rate_limits


class CodedTransportWSHandler(BaseGraphQLTransportWSHandler[ApiContext, None]):
    """graphql-transport-ws, every error message with its code; simple subscriptions shortcut."""

    async def send_message(self, message: TransportMessage) -> None:
        if message["type"] == "error":
            message = cast(TransportMessage, {**message, "payload": _coded(message["payload"])})
        await super().send_message(message)

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        refusal = await subscribe_refusal(_limits(self.view), self.websocket)
        if refusal is not None:
            error = {"id": message.get("id"), "type": "error", "payload": [refusal]}
            await self.send_message(cast(TransportMessage, error))
            return
        await super().handle_subscribe(message)

    async def run_operation(self, operation: Operation[ApiContext, None]) -> None:
        payloads = _fast_payloads(
            self.view, self.context, operation.query, operation.variables, operation.operation_name
        )
        if payloads is None:
            await super().run_operation(operation)
            return
        # Strawberry's run_operation, with payloads that are JSON already.
        try:
            async with contextlib.aclosing(payloads):
                async for payload in payloads:
                    next_message = {"id": operation.id, "type": "next", "payload": payload}
                    await operation.send_operation_message(cast(TransportMessage, next_message))
            await operation.send_operation_message({"id": operation.id, "type": "complete"})
        except Exception as error:
            await self.handle_task_exception(error)
            with contextlib.suppress(Exception):
                await operation.send_operation_message({"id": operation.id, "type": "complete"})
            self.operations.pop(operation.id, None)
            raise


class CodedWSHandler(BaseGraphQLWSHandler[ApiContext, None]):
    """Legacy graphql-ws, every error message with its code; simple subscriptions shortcut."""

    async def send_message(self, message: OperationMessage) -> None:
        if message["type"] == "error":
            message = cast(OperationMessage, {**message, "payload": _coded(message["payload"])})
        await super().send_message(message)

    async def handle_start(self, message: StartMessage) -> None:
        refusal = await subscribe_refusal(_limits(self.view), self.websocket)
        if refusal is not None:
            error = {"id": message.get("id"), "type": "error", "payload": refusal}
            await self.send_message(cast(OperationMessage, error))
            return
        await super().handle_start(message)

    async def handle_async_results(
        self,
        operation_id: str,
        query: str,
        operation_name: str | None,
        variables: dict[str, object] | None,
    ) -> None:
        payloads = _fast_payloads(self.view, self.context, query, variables, operation_name)
        if payloads is None:
            await super().handle_async_results(operation_id, query, operation_name, variables)
            return
        # Strawberry's handle_async_results, with payloads that are JSON already.
        try:
            self.subscriptions[operation_id] = payloads
            async for payload in payloads:
                data_message = {"type": "data", "id": operation_id, "payload": payload}
                await self.send_message(cast(OperationMessage, data_message))
            await self.send_message({"type": "complete", "id": operation_id})
        except asyncio.CancelledError:
            await self.send_message({"type": "complete", "id": operation_id})
        finally:
            self.subscriptions.pop(operation_id, None)
            self.tasks.pop(operation_id, None)


class GraphQLApp(GraphQL[ApiContext, None]):
    """Strawberry's ASGI GraphQL app, with our context and a fast JSON encoder."""

    graphql_transport_ws_handler_class = CodedTransportWSHandler
    graphql_ws_handler_class = CodedWSHandler

    def __init__(self, resources: Resources, **options: Any) -> None:
        settings = resources.settings
        schema = build_schema(
            max_depth=settings.max_query_depth,
            max_aliases=settings.max_aliases,
            max_tokens=settings.max_query_tokens,
            max_repeats=settings.max_field_repeats,
            introspection=settings.introspection,
            extra_extensions=[resources.metrics.extension()],
        )
        super().__init__(
            schema,
            graphql_ide="graphiql" if settings.introspection else None,
            connection_init_wait_timeout=timedelta(seconds=settings.websocket_init_timeout_seconds),
            max_subscriptions_per_connection=settings.max_subscriptions_per_connection,
            # Browsers on the origins allowed to call over HTTP may subscribe too.
            allowed_origins=settings.cors_origins,
            **options,
        )
        self.resources = resources
        self.fast_path = FastPath(
            schema._schema, resources.service, max_tokens=settings.max_query_tokens
        )
        self.fast_subscriptions = FastSubscriptions(
            schema._schema, max_tokens=settings.max_query_tokens, finished=self._subscription_ended
        )
        self.websockets = 0
        """WebSocket connections open now."""
        resources.metrics.track_websockets(lambda: self.websockets)

    def _subscription_ended(self, field: str, code: str) -> None:
        # Counted as Strawberry's operation metrics count a subscription that ends by itself.
        self.resources.metrics.operations.labels("subscription", field, code).inc()

    async def render_graphql_ide(self, request: Request) -> Response:
        # Our GraphiQL: vendored files instead of a CDN, and the API's examples in tabs.
        return graphiql_response()

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket | None = None
    ) -> ApiContext:
        return ApiContext(
            service=self.resources.service,
            live=self.resources.live,
            authorized=self._authorized(request),
        )

    def _authorized(self, request: Request | WebSocket) -> bool:
        """Whether the request presents a valid write token."""
        presented = token_from_headers(
            request.headers.get("x-internal-token"), request.headers.get("authorization")
        )
        return self.resources.tokens.accepts(presented)

    def encode_json(self, data: object) -> str:
        # Text, not bytes: WebSocket clients expect text frames for GraphQL messages.
        return orjson.dumps(data).decode()

    def parse_json(self, data: str | bytes) -> Any:
        # Strawberry takes any JSON body for an object (a bare string or number was a 500).
        parsed = super().parse_json(data)
        if not isinstance(parsed, dict | list):
            raise HTTPException(400, "the request body must be a JSON object")
        return parsed

    def decode_json(self, data: str | bytes) -> object:
        # orjson refuses nesting deeper than 1024 with a JSONDecodeError (a 400); the standard
        # library recursed until RecursionError, which left the app as a 500.
        return orjson.loads(data)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            if self.websockets >= self.resources.settings.max_websocket_connections:
                # 1013 "try again later", before the handshake is accepted.
                self.resources.metrics.websocket_was_refused()
                await receive()
                await send({"type": "websocket.close", "code": 1013})
                return
            self.websockets += 1
            try:
                await super().__call__(scope, receive, send)
            finally:
                self.websockets -= 1
            return
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive=receive)
        if request.method == "POST":
            fast = await self._fast_answer(request)
            if fast is not None:
                await fast(scope, receive, send)
                return
        # Strawberry answers a request it cannot run (malformed JSON, a batch, a mutation over
        # GET, no query...) in plain text; clients get a GraphQL error with its code instead.
        try:
            response = await self.run(request)
        except HTTPException as error:
            response = graphql_error_response(error.reason, error.status_code)
        await response(scope, receive, send)

    async def _fast_answer(self, request: Request) -> Response | None:
        """The hot operations' shortcut (schema/fast_path.py); None: take the normal path.

        The body read here stays cached on the request for the normal path.
        """
        if not request.headers.get("content-type", "").startswith("application/json"):
            return None
        try:
            payload = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return None
        if not isinstance(payload, dict):
            return None
        query = payload.get("query")
        variables = payload.get("variables") or {}
        operation_name = payload.get("operationName")
        if not (
            isinstance(query, str)
            and isinstance(variables, dict)
            and (operation_name is None or isinstance(operation_name, str))
        ):
            return None
        plan = self.fast_path.plan(query, operation_name)
        if plan is None:
            return None
        started = time.perf_counter()
        answered = await self.fast_path.answer(plan, variables, self._authorized(request))
        if answered is None:
            return None
        body, code = answered
        self.resources.metrics.fast_operation(
            plan.field.kind.value, plan.name, code, time.perf_counter() - started
        )
        return Response(body, media_type="application/json")


class BodySizeLimit:
    """Refuse request bodies over a bound with 413, before they are buffered in full."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await _too_large(self.max_bytes)(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _BodyTooLarge:
            await _too_large(self.max_bytes)(scope, receive, send)


class _BodyTooLarge(Exception):
    pass


def _too_large(max_bytes: int) -> Response:
    return graphql_error_response(f"request body larger than {max_bytes} bytes", 413)


def graphql_error_response(message: str, status_code: int) -> Response:
    """A request refused before any GraphQL ran, as a GraphQL error (code BAD_USER_INPUT)."""
    return JSONResponse(
        {"errors": [{"message": message, "extensions": {"code": "BAD_USER_INPUT"}}]},
        status_code=status_code,
    )


def create_app(settings: Settings | None = None, *, freeze_after_start: bool = False) -> Starlette:
    """The service as an ASGI app; every resource is opened and closed by its lifespan.

    `freeze_after_start`: exempt what start-up created from the cyclic GC (see
    `_freeze_startup_objects`); for a process that serves nothing else.
    """
    settings = settings or Settings()
    resources = lifecycle.build_resources(settings)
    graphql = GraphQLApp(resources)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await lifecycle.start(resources)
        if freeze_after_start:
            _freeze_startup_objects()
        try:
            yield
        finally:
            await lifecycle.stop(resources)

    async def healthz(_: Request) -> Response:
        return PlainTextResponse("ok")

    async def readyz(_: Request) -> Response:
        is_ready, checks = await lifecycle.ready(resources)
        return JSONResponse(checks, status_code=200 if is_ready else 503)

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(resources.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    # Outermost: a request refused by the inner ones (413...) still gets its id.
    middleware = [
        Middleware(ProxyHeadersMiddleware, trusted_hosts=list(map(str, settings.trusted_proxies))),
        Middleware(RequestId),
        Middleware(BodySizeLimit, max_bytes=settings.max_body_bytes),
    ]
    if settings.cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(settings.cors_origins),
                allow_methods=["GET", "POST", "OPTIONS"],
                allow_headers=["Content-Type", "Authorization", "X-Internal-Token"],
            )
        )
    middleware.append(Middleware(RateLimit, limits=resources.rate_limits))
    app = Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST", "OPTIONS"]),
            WebSocketRoute("/graphql", graphql),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
            *overlay.routes(),
        ],
        middleware=middleware,
        lifespan=lifespan,
    )
    app.state.resources = resources
    app.state.graphql = graphql
    return app


def create_serving_app() -> Starlette:
    """The app of a `leaderboard serve` process (uvicorn's factory, in every worker)."""
    return create_app(freeze_after_start=True)


def _freeze_startup_objects() -> None:
    """Exempt everything alive after start-up (modules, the schema, pools) from the cyclic GC.

    Those objects never die, but every full collection walked all of them: under write
    load, events waiting in the write buffer get promoted to the oldest generation fast
    enough to trigger a full collection several times a second, each a ~30 ms pause of
    the event loop (measured), which was the whole p99 of `incrementScore`.
    """
    # Not in a process that builds many apps (the tests): frozen objects are never
    # collected, so each app's cycles would outlive it.
    gc.collect()
    gc.freeze()
