"""The ASGI application: /graphql (GraphiQL, HTTP, WebSocket), /healthz, /readyz, /metrics,
and the live overlay (/overlay/{board}) with its static files (/static)."""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import timedelta
from typing import Any, cast

import graphql
import orjson
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from graphql import OperationType
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLRequestData

from resolvers.auth import Access, token_from_headers
from schema.build import build_schema
from schema.context import ApiContext
from schema.fast_path import FastPath
from schema.fast_subscriptions import FastSubscriptions
from server import overlay
from server.graphiql import graphiql_response
from server.http_guard import HttpGuard, graphql_error_response
from server.operation_rules import Request as OperationRequest
from server.operation_rules import TransportRules, request_scope, requested
from server.post_body import over_the_cap, read_body, replayed
from server.rate_limit import RateLimit
from server.resources import Resources, build_resources, ready, running
from server.settings import Settings
from server.websocket import CodedTransportWSHandler, CodedWSHandler, WebSocketOperations
from store.boards import board_index


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
            big_document_chars=settings.big_document_chars,
            introspection=settings.introspection,
            extra_extensions=[resources.metrics.extension(), TransportRules],
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
        self.max_document_chars = schema.max_document_chars
        """The schema's cap, also checked on a POST body before Strawberry reads it."""
        self.rate_limits = resources.rate_limits
        """Checked by the WebSocket handlers before a subscription starts (server/websocket.py)."""
        # The shortcuts plan documents against the schema as graphql-core types, rebuilt from
        # its SDL (Strawberry's own graphql-core schema is private); they only validate with
        # it, and no input of the API has a custom scalar whose literal parsing could differ.
        graphql_schema = graphql.build_schema(schema.as_str())
        # They serve short documents only: a big one is parsed once, by the normal path.
        self.fast_path = FastPath(
            graphql_schema,
            resources.service,
            max_tokens=settings.max_query_tokens,
            max_chars=settings.big_document_chars,
        )
        self.fast_subscriptions = FastSubscriptions(
            graphql_schema,
            max_tokens=settings.max_query_tokens,
            max_chars=settings.big_document_chars,
            finished=self._subscription_ended,
        )
        self.websocket_operations = WebSocketOperations(schema, self.fast_subscriptions)
        """What the WebSocket handlers run operations through (server/websocket.py)."""
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
        tokens = self.resources.tokens
        access = tokens.access(
            token_from_headers(
                request.headers.get("x-internal-token"), request.headers.get("authorization")
            )
        )
        return ApiContext(
            service=self.resources.service,
            live=self.resources.live,
            authorized=access is not Access.NONE,
            access=access,
            admin_enabled=tokens.admin_enabled,
            boards=self.resources.board_admin,
            moderation=self.resources.moderation,
        )

    def encode_json(self, data: object) -> str:
        # Text, not bytes: WebSocket clients expect text frames for GraphQL messages.
        return orjson.dumps(data).decode()

    def parse_json(self, data: str | bytes) -> Any:
        # Strawberry takes any JSON body for an object (a bare string or number was a 500).
        parsed = super().parse_json(data)
        if not isinstance(parsed, dict | list):
            raise HTTPException(400, "the request body must be a JSON object")
        return parsed

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        # What server/operation_rules.py checks the operation against: HTTP, and whether
        # the request named its operation (Strawberry's context no longer tells).
        data = await super().parse_http_body(request)
        if isinstance(data, GraphQLRequestData):
            requested(OperationRequest(websocket=False, operation_name=data.operation_name))
        return data

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
        if scope["method"] == "POST":
            read, answer = await self._fast_answer(scope, receive)
            if answer is not None:
                # What Starlette's Response(answer, media_type="application/json") sends.
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [
                            (b"content-length", str(len(answer)).encode()),
                            (b"content-type", b"application/json"),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": answer})
                return
            if read is not None:
                receive = replayed(read, receive)
        request = Request(scope, receive=receive)
        # Strawberry answers a request it cannot run (malformed JSON, a batch, a mutation over
        # GET, no query...) in plain text; clients get a GraphQL error with its code instead.
        try:
            with request_scope():
                response = await self.run(request)
        except HTTPException as error:
            response = graphql_error_response(error.reason, error.status_code)
        await response(scope, receive, send)

    async def _fast_answer(
        self, scope: Scope, receive: Receive
    ) -> tuple[bytes | None, bytes | None]:
        """The hot operations' shortcut (schema/fast_path.py): (the body, when it was read;
        the answer, None to take the normal path).

        The request's headers are read in one pass and its body straight from `receive`:
        Starlette's `Request` builds a header mapping per lookup and reads the body through
        an async generator, together about a tenth of an `incrementScore`.
        """
        # The first of each, as Starlette's `Headers.get` finds.
        content_type: bytes | None = None
        token: bytes | None = None
        authorization: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                if content_type is None:
                    content_type = value
            elif name == b"x-internal-token":
                if token is None:
                    token = value
            elif name == b"authorization" and authorization is None:
                authorization = value
        if content_type is None or not content_type.startswith(b"application/json"):
            return None, None
        body = await read_body(receive)
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            return body, None
        if not isinstance(payload, dict):
            return body, None
        # A document has no more characters than its body has bytes: only a body over the
        # cap can hold one over it.
        if len(body) > self.max_document_chars:
            refusal = over_the_cap(payload, self.max_document_chars)
            if refusal is not None:
                return body, refusal
        query = payload.get("query")
        variables = payload.get("variables") or {}
        operation_name = payload.get("operationName")
        if not (
            isinstance(query, str)
            and isinstance(variables, dict)
            and (operation_name is None or isinstance(operation_name, str))
        ):
            return body, None
        plan = self.fast_path.plan(query, operation_name)
        if plan is None:
            return body, None
        started = time.perf_counter()
        # Only a mutation needs the token checked (the shortcut looks at nothing else).
        authorized = plan.field.kind is OperationType.MUTATION and self.resources.tokens.accepts(
            token_from_headers(_text(token), _text(authorization))
        )
        answered = await self.fast_path.answer(plan, variables, authorized)
        if answered is None:
            return body, None
        answer, code = answered
        self.resources.metrics.fast_operation(
            plan.field.kind.value, plan.name, code, time.perf_counter() - started
        )
        return body, answer


def _text(header: bytes | None) -> str | None:
    return None if header is None else header.decode("latin-1")


class ServiceApp(Starlette):
    """The service's Starlette app, with short lanes for POST /graphql and its WebSocket.

    Every layer a request passes is a coroutine frame and a wrapper per message: Starlette's
    error and exception middleware and its router cost `incrementScore` about 10 µs and
    hand nothing to the GraphQL app it uses (it raises no Starlette HTTPException, reads no
    path parameter). POST /graphql, the hot path, goes through the layers it needs
    (`graphql_lane`: the HTTP guard, which also answers 500 for an app that raised, then CORS
    and the rate limits when configured) straight to the GraphQL app. A WebSocket keeps
    every layer it passed through alive for its whole life, about 4 KiB per idle subscriber
    (docs/performance.md, "Memory per WebSocket subscriber"): one on /graphql goes through
    the guard only (`websocket_lane`). Every other request takes the full stack.
    """

    def __init__(
        self, *args: Any, graphql_lane: ASGIApp, websocket_lane: ASGIApp, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.graphql_lane = graphql_lane
        self.websocket_lane = websocket_lane

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Coroutine[Any, Any, None]:
        # Starlette's own __call__ otherwise, inlined, and a plain function handing back the
        # lane's coroutine: an `async def` would be a frame for every HTTP request, and one
        # each open WebSocket keeps for its whole life. (`serve` tells uvicorn the app is
        # ASGI 3, which it would otherwise guess from an `async def __call__`.)
        scope["app"] = self
        kind = scope["type"]
        if kind == "http":
            if scope["method"] == "POST" and scope["path"] == "/graphql":
                return cast(Coroutine[Any, Any, None], self.graphql_lane(scope, receive, send))
        elif kind == "websocket" and scope["path"] == "/graphql":
            return cast(Coroutine[Any, Any, None], self.websocket_lane(scope, receive, send))
        if self.middleware_stack is None:
            self.middleware_stack = self.build_middleware_stack()
        return cast(Coroutine[Any, Any, None], self.middleware_stack(scope, receive, send))


def _wrapped(app: ASGIApp, middleware: list[Middleware]) -> ASGIApp:
    """`app` inside `middleware`, the first outermost (as Starlette builds its stack)."""
    for factory, args, kwargs in reversed(middleware):
        app = factory(app, *args, **kwargs)
    return app


def create_app(
    settings: Settings | None = None,
    *,
    freeze_after_start: bool = False,
    clock: Callable[[], float] = time.time,
) -> Starlette:
    """The service as an ASGI app; every resource is opened and closed by its lifespan.

    `freeze_after_start`: exempt what start-up created from the cyclic GC (see
    `_freeze_startup_objects`); for a process that serves nothing else. `clock` (Unix
    seconds): what decides the live period and when periods end (tests move it).
    """
    settings = settings or Settings()
    resources = build_resources(settings, clock=clock)
    graphql = GraphQLApp(resources)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with running(resources):
            if freeze_after_start:
                _freeze_startup_objects()
            yield

    async def healthz(_: Request) -> Response:
        return PlainTextResponse("ok")

    async def readyz(_: Request) -> Response:
        is_ready, checks = await ready(resources)
        return JSONResponse(checks, status_code=200 if is_ready else 503)

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(resources.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    # Outermost: a request refused by the inner ones (429...) still gets its id. The
    # GraphQL WebSocket's lane (`ServiceApp`) has this one only.
    guard = Middleware(
        HttpGuard,
        trusted_proxies=settings.trusted_proxies,
        max_body_bytes=settings.max_body_bytes,
        body_timeout_seconds=settings.body_timeout_seconds,
    )
    middleware = [guard]
    if settings.cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(settings.cors_origins),
                allow_methods=["GET", "POST", "OPTIONS"],
                allow_headers=["Content-Type", "Authorization", "X-Internal-Token"],
            )
        )
    if resources.rate_limits.enabled:
        # Off by default; a layer that only passes requests on still costs every request.
        middleware.append(Middleware(RateLimit, limits=resources.rate_limits))
    app = ServiceApp(
        graphql_lane=_wrapped(graphql, middleware),
        websocket_lane=_wrapped(graphql, [guard]),
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST", "OPTIONS"]),
            WebSocketRoute("/graphql", graphql),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
            *overlay.routes(board_index(resources.registry.index)),
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
    # A batch of 500 increments allocates a few thousand tracked objects that live until
    # flushed (events, outcomes): at the default 700 a young collection ran every ~100
    # events and promoted them on, and the older generations' collections walked them again
    # (~2,000 young, ~180 middle and ~17 full collections per quick ingest run). At 10,000:
    # 54, 5 and 1, the service's CPU per ingested event ~1.3 us (~13 %) lower, ingest
    # latency no worse (docs/performance.md, ingest branch).
    gc.set_threshold(_YOUNG_COLLECTION_THRESHOLD, *gc.get_threshold()[1:])


_YOUNG_COLLECTION_THRESHOLD = 10_000
"""Allocations (net) between young collections of a serving process (CPython's default: 700)."""
