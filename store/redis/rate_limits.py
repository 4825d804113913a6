"""The rate limiter on Redis: one TAT per client, shared by every instance of the service.

Each check is decided in one EVALSHA of store/redis/lua/rate_limit.lua (one round trip, atomic,
on the Redis server's clock), the same GCRA as `store.rate_limits.gcra`. Checks made at
the same moment share that call (store/redis/coalescing.py): under load the per-call cost of
the client (connection checkout, send, parse) is paid once for many requests.
"""

from __future__ import annotations

from importlib.resources import files

import redis.asyncio as redis_asyncio
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from store.errors import StoreUnavailable
from store.rate_limits import ALLOWED, Decision, Rate
from store.redis.coalescing import CoalescedCalls

_SCRIPT = files("store.redis").joinpath("lua", "rate_limit.lua").read_text("utf-8")
_MAX_CONNECTIONS = 32
# A limiter that cannot answer quickly is skipped (the caller fails open): it must never
# hold a request for long.
_TIMEOUT_SECONDS = 0.5
_COALESCED_MAX_CHECKS = 256
_COALESCED_MAX_IN_FLIGHT = 4


class RedisRateLimiter:
    """`RateLimiter` on Redis (7.0 or later) or a Redis Cluster (one key per check)."""

    def __init__(self, client: redis_asyncio.Redis | RedisCluster, key_prefix: str) -> None:
        self._client = client
        self._prefix = key_prefix
        self._script = client.register_script(_SCRIPT)
        self._checks: CoalescedCalls[tuple[str, Rate], Decision] = CoalescedCalls(
            self._check_many,
            # A cluster runs a script only on keys of one slot: there, each check goes alone.
            max_items=1 if isinstance(client, RedisCluster) else _COALESCED_MAX_CHECKS,
            max_in_flight=_COALESCED_MAX_IN_FLIGHT,
            retry_alone=(),
            abandoned=lambda: StoreUnavailable("rate limiter: the call was abandoned"),
        )

    @classmethod
    def from_url(cls, url: str, *, key_prefix: str, cluster: bool = False) -> RedisRateLimiter:
        """A limiter on its own client for the ranking store's URL (nothing connects yet).

        Its own client, with short timeouts, so a slow limiter cannot queue behind (or
        hold up) the ranking store's connections.
        """
        options = {
            "socket_timeout": _TIMEOUT_SECONDS,
            "socket_connect_timeout": _TIMEOUT_SECONDS,
            "socket_keepalive": True,
            # A lost reply is not retried: the caller fails open instead of waiting.
            "retry": Retry(NoBackoff(), 0),
        }
        if cluster:
            return cls(
                RedisCluster.from_url(url, max_connections=_MAX_CONNECTIONS, **options), key_prefix
            )
        pool = redis_asyncio.BlockingConnectionPool.from_url(
            url, max_connections=_MAX_CONNECTIONS, timeout=_TIMEOUT_SECONDS, **options
        )
        return cls(redis_asyncio.Redis.from_pool(pool), key_prefix)

    async def check(self, key: str, rate: Rate) -> Decision:
        """Count one request of `key` against `rate` (in a script call shared with the
        checks made at the same moment)."""
        (decision,) = await self._checks([(key, rate)])
        return decision

    async def _check_many(self, checks: list[tuple[str, Rate]]) -> list[Decision]:
        args: list[int] = []
        for _, rate in checks:
            args += (rate.interval_us, rate.burst)
        try:
            reply = await self._script(
                keys=[f"{self._prefix}:rate:{key}" for key, _ in checks], args=args
            )
        except (RedisError, OSError) as error:
            raise StoreUnavailable(f"rate limiter: {error}") from error
        return [
            ALLOWED if allowed else Decision(allowed=False, retry_after_us=int(retry_after_us))
            for allowed, retry_after_us in zip(reply[::2], reply[1::2], strict=True)
        ]

    async def close(self) -> None:
        """Close the client's connections."""
        await self._client.aclose()
