"""Per-client rate limits at the door of /graphql (docs/security.md).

A request that presents a valid write token counts against its token's write limit
(keyed by a fingerprint of the token, never the token); any other counts against its
client address's read limit. The address is the peer's, or, from a trusted proxy, the
client `X-Forwarded-For` names (the HTTP guard, server/http_guard.py, puts it in the ASGI
scope from LEADERBOARD_TRUSTED_PROXIES before this runs).

Over the limit: HTTP 429 with `Retry-After` and a GraphQL error with code RATE_LIMITED;
a WebSocket subscribe gets an error message with that code. When the limiter cannot
answer (Redis down), requests are let through: see `RateLimits.check`.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Mapping
from typing import cast

from prometheus_client import CollectorRegistry, Counter
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send
from strawberry.asgi import ASGIWebSocketAdapter

from resolvers.auth import WriteTokens, token_from_headers
from resolvers.errors import ErrorCode
from server.settings import Settings
from store.errors import StoreUnavailable
from store.rate_limits import ALLOWED, Decision, InProcessRateLimiter, Rate, RateLimiter
from store.redis.rate_limits import RedisRateLimiter

logger = logging.getLogger(__name__)

READS = "reads"
WRITES = "writes"
SUBSCRIBE = "subscribe"

# After the limiter failed, requests pass unchecked this long instead of each paying for
# a connection attempt; one warning per this many seconds at most.
_SKIP_AFTER_FAILURE_SECONDS = 1.0
_WARN_EVERY_SECONDS = 10.0


def token_fingerprint(token: str) -> str:
    """The key of a write token's bucket: a hash, so Redis never holds the token itself."""
    return hashlib.sha256(token.encode()).hexdigest()[:32]


def retry_after_seconds(decision: Decision) -> int:
    """Whole seconds for `Retry-After` (HTTP has no finer unit): rounded up, at least 1."""
    return max(1, math.ceil(decision.retry_after_us / 1_000_000))


def rate_limited_error(decision: Decision) -> dict[str, object]:
    """The GraphQL error a refused request or subscribe gets."""
    seconds = retry_after_seconds(decision)
    return {
        "message": f"rate limit exceeded; retry in {seconds} s",
        "extensions": {"code": ErrorCode.RATE_LIMITED.value, "retryAfter": seconds},
    }


class RateLimits:
    """The configured limits, the limiter they are counted in, and their metrics."""

    def __init__(
        self,
        limiter: RateLimiter,
        *,
        reads: Rate | None,
        writes: Rate | None,
        tokens: WriteTokens,
        registry: CollectorRegistry,
    ) -> None:
        self._limiter = limiter
        self._reads = reads
        self._writes = writes
        self._tokens = tokens
        self.enabled = reads is not None or writes is not None
        self._skip_until = 0.0
        self._warned_at = -math.inf
        self.refused = Counter(
            "leaderboard_rate_limited",
            "Requests and subscribes refused with RATE_LIMITED, by reason (reads, writes, "
            "subscribe); never by client.",
            ["reason"],
            registry=registry,
        )
        for reason in (READS, WRITES, SUBSCRIBE):
            self.refused.labels(reason)
        self.failures = Counter(
            "leaderboard_rate_limiter_failures",
            "Checks the limiter could not make (Redis down...): those requests were let through.",
            registry=registry,
        )

    @classmethod
    def from_settings(
        cls, settings: Settings, tokens: WriteTokens, registry: CollectorRegistry
    ) -> RateLimits:
        """The limits the settings name, counted in Redis when the service runs on Redis."""
        limiter: RateLimiter
        if settings.redis_url and (settings.rate_limit_reads or settings.rate_limit_writes):
            limiter = RedisRateLimiter.from_url(
                settings.redis_url, key_prefix=settings.key_prefix, cluster=settings.redis_cluster
            )
        else:
            limiter = InProcessRateLimiter()
        return cls(
            limiter,
            reads=settings.rate_limit_reads,
            writes=settings.rate_limit_writes,
            tokens=tokens,
            registry=registry,
        )

    async def check(
        self, client: str | None, headers: Mapping[str, str], reason: str | None = None
    ) -> Decision:
        """Count one request; `reason` labels a refusal (default: reads or writes).

        Fails open: when the limiter cannot answer, the request passes (counted on
        `leaderboard_rate_limiter_failures`). The limits protect capacity, they guard no
        data; refusing every read because Redis is down would turn a limiter outage into a
        full one, while the proxy's own per-address limits (limit_req) still hold.
        """
        if not self.enabled:
            return ALLOWED
        token = token_from_headers(headers.get("x-internal-token"), headers.get("authorization"))
        # Only a valid token gets its own bucket: random tokens must not dodge the read limit.
        if token is not None and self._tokens.accepts(token):
            if self._writes is None:
                return ALLOWED
            key, rate, kind = f"writes:{token_fingerprint(token)}", self._writes, WRITES
        else:
            if self._reads is None:
                return ALLOWED
            key, rate, kind = f"reads:{client or 'unknown'}", self._reads, READS
        if time.monotonic() < self._skip_until:
            return ALLOWED
        try:
            decision = await self._limiter.check(key, rate)
        except StoreUnavailable as error:
            self._failed(error)
            return ALLOWED
        if not decision.allowed:
            self.refused.labels(reason or kind).inc()
        return decision

    def _failed(self, error: StoreUnavailable) -> None:
        self.failures.inc()
        now = time.monotonic()
        self._skip_until = now + _SKIP_AFTER_FAILURE_SECONDS
        if now - self._warned_at >= _WARN_EVERY_SECONDS:
            self._warned_at = now
            logger.warning("rate limits not applied (letting requests through): %s", error)

    async def close(self) -> None:
        """Close the limiter's connections."""
        await self._limiter.close()


def client_address(scope: Scope) -> str | None:
    """The client's address as the ASGI scope has it (after the proxy headers middleware)."""
    client = scope.get("client")
    return client[0] if client else None


class RateLimit:
    """ASGI middleware: GET and POST /graphql over the limit get 429 with `Retry-After`."""

    def __init__(self, app: ASGIApp, limits: RateLimits, path: str = "/graphql") -> None:
        self.app = app
        self.limits = limits
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self.limits.enabled
            and scope["type"] == "http"
            and scope["path"] == self.path
            and scope["method"] in ("GET", "POST")
        ):
            decision = await self.limits.check(client_address(scope), Headers(scope=scope))
            if not decision.allowed:
                response = JSONResponse(
                    {"errors": [rate_limited_error(decision)]},
                    status_code=429,
                    headers={"Retry-After": str(retry_after_seconds(decision))},
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


async def subscribe_refusal(limits: RateLimits, websocket: object) -> dict[str, object] | None:
    """The error a WebSocket subscribe over the limit gets (None: it may go ahead).

    `websocket` is Strawberry's adapter of the connection, holding Starlette's WebSocket.
    """
    if not limits.enabled:
        return None
    connection = cast(ASGIWebSocketAdapter, websocket).ws
    client = connection.client.host if connection.client else None
    decision = await limits.check(client, connection.headers, reason=SUBSCRIBE)
    return None if decision.allowed else rate_limited_error(decision)
