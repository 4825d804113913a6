"""The door of every HTTP request and WebSocket connection: one pure ASGI layer.

In one pass over the request's headers, and one wrapper each around `receive` and `send`:

- proxy headers: from a trusted proxy (`LEADERBOARD_TRUSTED_PROXIES`), the client is the
  one `X-Forwarded-For` names (the nearest hop that is not itself a trusted proxy) and the
  scheme the one `X-Forwarded-Proto` says; the rate limits and the access log see that
  client;
- the request id (server/request_id.py): set in `server.logs.request_id` while the request
  is served, returned in `X-Request-ID` (for a WebSocket, in the handshake's answer);
- the body size bound (`LEADERBOARD_MAX_BODY_BYTES`): 413 when the declared length is over
  it, or as soon as the bytes received are, before the body is buffered in full;
- the body read deadline (`LEADERBOARD_BODY_TIMEOUT_SECONDS`), counted from the first read:
  408 and the connection closed past it (server/http_timeouts.py has the head's);
- a request whose app raised gets 500 (when no answer had started), with its request id.

Each of these was a middleware of its own: every layer is a coroutine frame per request
and a wrapper per message, and four of them cost about 20 µs per request, a fifth of an
`incrementScore` (docs/performance.md). Refusals here are GraphQL errors with code
BAD_USER_INPUT, as every refusal before GraphQL runs.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
from collections.abc import Awaitable, Coroutine, Iterable
from typing import Any, cast

from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server import logs
from server.http_timeouts import DeadlineSweep
from server.request_id import HEADER as REQUEST_ID_HEADER
from server.request_id import accepted_request_id, new_request_id

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_CONTENT_LENGTH = b"content-length"
_FORWARDED_FOR = b"x-forwarded-for"
_FORWARDED_PROTO = b"x-forwarded-proto"
_SCHEMES = frozenset({"http", "https", "ws", "wss"})


def graphql_error_response(message: str, status_code: int, **options: Any) -> Response:
    """A request refused before any GraphQL ran, as a GraphQL error (code BAD_USER_INPUT)."""
    return JSONResponse(
        {"errors": [{"message": message, "extensions": {"code": "BAD_USER_INPUT"}}]},
        status_code=status_code,
        **options,
    )


class TrustedProxies:
    """Which peers may say who the client is, and who they say it is."""

    def __init__(self, networks: Iterable[Network]) -> None:
        self._networks = tuple(networks)
        # Bounded: X-Forwarded-For hops are the client's to choose.
        self._cached = functools.lru_cache(maxsize=4096)(self._trusts)

    def trusts(self, host: str) -> bool:
        """Whether `host` (an address, or whatever a hop says) is one of the proxies."""
        # No address is longer than a DNS name: a longer hop is not cached (nor trusted).
        return self._cached(host) if len(host) <= 253 else self._trusts(host)

    def _trusts(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self._networks)

    def client(self, forwarded_for: list[bytes]) -> tuple[str, int] | None:
        """The client the X-Forwarded-For values name: the nearest hop that is not a
        trusted proxy; the farthest when every hop is one; None when they name nobody."""
        hops = [hop.strip() for hop in b",".join(forwarded_for).decode("latin-1").split(",")]
        for hop in reversed(hops):
            host, port = _host_and_port(hop)
            if not self.trusts(host):
                return (host, port) if host else None
        host, port = _host_and_port(hops[0])
        return (host, port) if host else None


def _host_and_port(hop: str) -> tuple[str, int]:
    """A hop as `host`, `host:port`, `[v6]` or `[v6]:port` (port 0 when it names none).
    Anything else is kept whole, so that no odd value is mistaken for a trusted address."""
    if hop.startswith("["):
        host, bracket, rest = hop[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            return hop, 0
        return host, int(rest[1:]) if rest[1:].isdigit() else 0
    if hop.count(":") == 1:
        host, _, port = hop.partition(":")
        return (host, int(port)) if port.isdigit() else (hop, 0)
    return hop, 0


class HttpGuard:
    """Pure ASGI: proxy headers, request id, body size and body deadline (module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        trusted_proxies: Iterable[Network],
        max_body_bytes: int,
        body_timeout_seconds: float,
    ) -> None:
        self.app = app
        self.proxies = TrustedProxies(trusted_proxies)
        self.max_body_bytes = max_body_bytes
        self.body_timeout_seconds = body_timeout_seconds
        self._expired: set[asyncio.Task[Any]] = set()
        self._body_deadlines: DeadlineSweep[asyncio.Task[Any]] = DeadlineSweep(
            min(1.0, body_timeout_seconds / 5), self._body_too_slow
        )

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Coroutine[Any, Any, None]:
        # A plain function handing back the next layer's coroutine for a WebSocket: an
        # `async def` here would be a frame each open WebSocket keeps for its whole life
        # (docs/performance.md, "Memory per WebSocket subscriber").
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            return cast(Coroutine[Any, Any, None], self.app(scope, receive, send))
        # One pass over the headers for every layer's needs; the first Content-Length and
        # X-Request-ID count, X-Forwarded-For values join in order.
        length: bytes | None = None
        presented: bytes | None = None
        proto: bytes | None = None
        forwarded_for: list[bytes] = []
        for name, value in scope["headers"]:
            if name == _CONTENT_LENGTH:
                if length is None:
                    length = value
            elif name == REQUEST_ID_HEADER:
                if presented is None:
                    presented = value
            elif name == _FORWARDED_FOR:
                forwarded_for.append(value)
            elif name == _FORWARDED_PROTO:
                proto = value
        if forwarded_for or proto is not None:
            self._apply_proxy_headers(scope, forwarded_for, proto)

        current = accepted_request_id(presented) or new_request_id()
        id_header = (REQUEST_ID_HEADER, current.encode("ascii"))
        if kind == "websocket":
            # Set for the connection's life and not reset: the server runs each connection
            # in a task of its own, whose context ends with it.
            logs.request_id.set(current)
            guarded = _handshake_send(send, id_header)
            return cast(Coroutine[Any, Any, None], self.app(scope, receive, guarded))
        return self._http(scope, receive, send, length, current, id_header)

    async def _http(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        length: bytes | None,
        current: str,
        id_header: tuple[bytes, bytes],
    ) -> None:
        started = False

        # A plain function returning `send`'s awaitable: no coroutine per message.
        def guarded_send(message: Message) -> Awaitable[None]:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message = {**message, "headers": [*message.get("headers", ()), id_header]}
            return send(message)

        token = logs.request_id.set(current)
        max_bytes = self.max_body_bytes
        if length is not None and (not length.isdigit() or int(length) > max_bytes):
            await self._too_large()(scope, receive, guarded_send)
            logs.request_id.reset(token)
            return
        deadline: float | None = None
        complete = False
        received = 0

        async def guarded_receive() -> Message:
            nonlocal deadline, complete, received
            if complete:
                return await receive()
            loop = asyncio.get_running_loop()
            now = loop.time()
            if deadline is None:
                deadline = now + self.body_timeout_seconds
            elif now >= deadline:
                raise _BodyTimedOut
            task = asyncio.current_task()
            assert task is not None  # an ASGI app always runs in a task
            self._body_deadlines.watch(task, deadline, loop)
            try:
                message = await receive()
            except asyncio.CancelledError:
                if self._handled_expiry(task):
                    raise _BodyTimedOut from None
                raise
            finally:
                self._body_deadlines.forget(task)
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    raise _BodyTooLarge
                if message.get("more_body", False):
                    return message
            complete = True
            return message

        try:
            await self.app(scope, guarded_receive, guarded_send)
        except _BodyTooLarge:
            if not started:
                await self._too_large()(scope, receive, guarded_send)
        except _BodyTimedOut:
            if not started:
                await self._timed_out()(scope, receive, guarded_send)
        except Exception:
            # What Starlette's outermost layer would answer, with the request id; the
            # error goes on up, for the server to log (still in this request's context).
            if not started:
                await PlainTextResponse("Internal Server Error", 500)(scope, receive, guarded_send)
            raise
        # Reset only after a normal return: when the app raised, the server's
        # "Exception in ASGI application" line is written next, in this same context, and
        # must still carry the id. (Servers run each request in a task of its own.)
        logs.request_id.reset(token)

    def _apply_proxy_headers(
        self, scope: Scope, forwarded_for: list[bytes], proto: bytes | None
    ) -> None:
        peer = scope.get("client")
        if not peer or not self.proxies.trusts(peer[0]):
            return
        if proto is not None:
            scheme = proto.decode("latin-1").strip()
            if scheme in _SCHEMES:
                websocket = scope["type"] == "websocket"
                scope["scheme"] = scheme.replace("http", "ws") if websocket else scheme
        if forwarded_for:
            client = self.proxies.client(forwarded_for)
            if client is not None:
                scope["client"] = client

    def _body_too_slow(self, task: asyncio.Task[Any]) -> None:
        self._expired.add(task)
        task.cancel()

    def _handled_expiry(self, task: asyncio.Task[Any]) -> bool:
        """Whether the sweep cancelled `task` (and undo that cancellation: it is handled)."""
        if task not in self._expired:
            return False
        self._expired.discard(task)
        task.uncancel()
        return True

    def _too_large(self) -> Response:
        return graphql_error_response(f"request body larger than {self.max_body_bytes} bytes", 413)

    def _timed_out(self) -> Response:
        return graphql_error_response(
            f"request body not received within {self.body_timeout_seconds:g} s",
            408,
            headers={"Connection": "close"},
        )


def _handshake_send(send: Send, id_header: tuple[bytes, bytes]) -> Send:
    """`send` with the request id added to the WebSocket handshake's answer."""

    def handshake_send(message: Message) -> Awaitable[None]:
        if message["type"] == "websocket.accept":
            message = {**message, "headers": [*message.get("headers", ()), id_header]}
        return send(message)

    return handshake_send


class _BodyTooLarge(Exception):
    pass


class _BodyTimedOut(Exception):
    pass
