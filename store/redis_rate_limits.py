"""The rate limiter on Redis: one TAT per client, shared by every instance of the service.

Each check is one EVALSHA of store/lua/rate_limit.lua (one round trip, atomic, on the
Redis server's clock); the decision is the same GCRA as `store.rate_limits.gcra`.
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

_SCRIPT = files("store").joinpath("lua", "rate_limit.lua").read_text("utf-8")
_MAX_CONNECTIONS = 32
# A limiter that cannot answer quickly is skipped (the caller fails open): it must never
# hold a request for long.
_TIMEOUT_SECONDS = 0.5


class RedisRateLimiter:
    """`RateLimiter` on Redis (7.0 or later) or a Redis Cluster (one key per check)."""

    def __init__(self, client: redis_asyncio.Redis | RedisCluster, key_prefix: str) -> None:
        self._client = client
        self._prefix = key_prefix
        self._script = client.register_script(_SCRIPT)

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
        """Count one request of `key` against `rate`, in one script call."""
        try:
            allowed, retry_after_us = await self._script(
                keys=[f"{self._prefix}:rate:{key}"], args=[rate.interval_us, rate.burst]
            )
        except (RedisError, OSError) as error:
            raise StoreUnavailable(f"rate limiter: {error}") from error
        if allowed:
            return ALLOWED
        return Decision(allowed=False, retry_after_us=int(retry_after_us))

    async def close(self) -> None:
        """Close the client's connections."""
        await self._client.aclose()
