"""The Redis client: the only module that knows a single Redis from a Redis Cluster.

It makes the client (`Connection.from_url`), runs script calls (timed for the
observer), pipelines and per-shard fan-outs, publishes and subscribes, and maps
"Redis did not answer" errors to `StoreUnavailable`. The rest of the package asks it
for those and never looks at the client's type; `Connection.cluster` is asked once,
to pick the write path (cluster.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

import redis.asyncio as redis_asyncio
from redis import exceptions as redis_errors
from redis.asyncio.client import Pipeline, PubSub
from redis.asyncio.cluster import ClusterPipeline, ClusterPubSub, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript

from store.errors import StoreUnavailable
from store.observer import StoreObserver

AnyPipeline = Pipeline | ClusterPipeline
ScriptArgs = Sequence[str | int | bytes]

MAX_CONNECTIONS = 128
SUBSCRIPTION_IDLE_SECONDS = 30.0
"""After this long without a message the subscription is probed; no answer = reconnect."""

# Errors that mean "Redis did not answer (usefully)": the caller may retry later.
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    redis_errors.ConnectionError,  # also refused, reset, authentication, still loading
    redis_errors.TimeoutError,
    redis_errors.ReadOnlyError,  # a replica after a failover
    redis_errors.OutOfMemoryError,
    redis_errors.ClusterDownError,
    redis_errors.TryAgainError,
)

# A subscription also ends on an error reply (MOVED while a cluster reshards): resubscribe.
SUBSCRIPTION_ERRORS: tuple[type[Exception], ...] = (
    *UNAVAILABLE_ERRORS,
    redis_errors.ResponseError,
)


class Connection:
    """One Redis client (a single node's pool, or a cluster client) and what runs on it."""

    def __init__(
        self, client: redis_asyncio.Redis | RedisCluster, observer: StoreObserver | None = None
    ) -> None:
        self._client = client
        self._observer = observer
        self.cluster = isinstance(client, RedisCluster)
        """Whether this is a Redis Cluster: a batch then spreads over slots (cluster.py)."""
        # The cluster client's per-node pools fail at once when full; calls wait for a
        # slot instead, as the blocking pool of a single Redis does (sharded reads fan out).
        self._in_flight = asyncio.Semaphore(MAX_CONNECTIONS) if self.cluster else None
        self._script_names: dict[str, str] = {}

    @classmethod
    def from_url(
        cls, url: str, *, cluster: bool = False, observer: StoreObserver | None = None
    ) -> Connection:
        """A client for a `redis://` or `rediss://` URL (nothing connects yet).

        With `cluster`, the URL names any one node of a Redis Cluster (the seed); the
        client discovers the others and follows slot moves and failovers.
        """
        if cluster:
            return cls(
                RedisCluster.from_url(
                    url,
                    max_connections=MAX_CONNECTIONS,
                    socket_timeout=5.0,
                    socket_connect_timeout=5.0,
                    socket_keepalive=True,
                    # Redirections (MOVED, ASK) are followed: the command did not run. A
                    # lost connection is not retried (a re-sent script could apply twice),
                    # but the slot map is refreshed, so the next call finds a promoted
                    # replica.
                    retry=Retry(NoBackoff(), 0),
                ),
                observer,
            )
        # A spike waits for a pooled connection (up to the socket timeout) instead of
        # failing at once when every connection is busy.
        pool = redis_asyncio.BlockingConnectionPool.from_url(
            url,
            max_connections=MAX_CONNECTIONS,
            timeout=5.0,
            socket_timeout=5.0,
            socket_connect_timeout=5.0,
            socket_keepalive=True,
            # No automatic retries: a script re-sent after its reply was lost could apply
            # an increment twice. Callers get StoreUnavailable and retry themselves.
            retry=Retry(NoBackoff(), 0),
        )
        return cls(redis_asyncio.Redis.from_pool(pool), observer)

    @property
    def client(self) -> redis_asyncio.Redis | RedisCluster:
        """The client, for plain commands that read the same on both kinds."""
        return self._client

    def register(self, name: str, source: str) -> AsyncScript:
        """A script on this client; its calls are observed under `name`."""
        script = self._client.register_script(source)
        self._script_names[script.sha] = name
        return script

    async def call(self, script: AsyncScript, keys: Sequence[str], args: ScriptArgs) -> Any:
        """One script call (EVALSHA, loading the script when missing), timed."""
        started = time.perf_counter()
        failed = True
        try:
            if self._in_flight is None:
                with unavailable_on_failure():
                    reply = await script(keys=keys, args=args)
            else:
                async with self._in_flight:
                    with unavailable_on_failure():
                        reply = await script(keys=keys, args=args)
            failed = False
            return reply
        finally:
            if self._observer is not None:
                self._observer.observe_store(
                    "redis",
                    self._script_names[script.sha],
                    time.perf_counter() - started,
                    failed=failed,
                )

    async def pipelined(self, commands: Callable[[AnyPipeline], None]) -> list[Any]:
        """Plain commands over the shards in one pipeline: on a cluster, one round trip
        per node in parallel, and none of a script call's overhead inside Redis."""
        pipe = self._client.pipeline(transaction=False)
        commands(pipe)
        with unavailable_on_failure():
            if self._in_flight is None:
                return list(await pipe.execute())
            async with self._in_flight:
                return list(await pipe.execute())

    async def fan_out(
        self, script: AsyncScript, calls: Sequence[tuple[list[str], ScriptArgs]]
    ) -> list[Any]:
        """One script run per shard, replies in order: one round trip.

        One Redis: a pipeline (cheaper on the client than separate calls). A cluster
        refuses scripts in pipelines: concurrent calls, one per shard.
        """
        if len(calls) == 1 or self.cluster:
            return list(
                await asyncio.gather(*(self.call(script, keys, args) for keys, args in calls))
            )

        def commands(pipe: AnyPipeline) -> None:
            for keys, args in calls:
                pipe.evalsha(script.sha, len(keys), *keys, *args)

        try:
            return await self.pipelined(commands)
        except redis_errors.NoScriptError:
            # Not loaded on this server yet (a restart, a failover): load it, then again.
            # (redis-py's own pipeline scripts would ask SCRIPT EXISTS on every execute.)
            pass
        with unavailable_on_failure():
            await self._client.script_load(script.script)
        return await self.pipelined(commands)

    async def publish(self, channel: str, data: bytes) -> None:
        """PUBLISH, or on a cluster SPUBLISH (sharded pub/sub: only the channel's node)."""
        with unavailable_on_failure():
            if isinstance(self._client, RedisCluster):
                await self._client.spublish(channel, data)
            else:
                await self._client.publish(channel, data)

    def subscription(self, channel: str) -> Subscription:
        """A subscription to `channel`, not subscribed yet (see `Subscription`)."""
        return Subscription(self._client.pubsub(), channel)

    async def rediscover(self) -> None:
        """After a lost subscription: on a cluster, find the nodes anew (a channel's master
        may have been replaced). Best effort."""
        if isinstance(self._client, RedisCluster):
            with suppress(*SUBSCRIPTION_ERRORS, redis_errors.RedisClusterException):
                await self._client.nodes_manager.initialize()

    async def ping(self) -> None:
        """Raise `StoreUnavailable` unless Redis answers PING."""
        with unavailable_on_failure():
            await self._client.ping()

    async def close(self) -> None:
        """Close the client's connections."""
        await self._client.aclose()


class Subscription:
    """One pub/sub connection listening to one channel (sharded pub/sub on a cluster).

    `next_data()` raises one of `SUBSCRIPTION_ERRORS` when the subscription is lost;
    the caller resubscribes on a new `Subscription`.
    """

    def __init__(self, pubsub: PubSub, channel: str) -> None:
        self._pubsub = pubsub
        self._channel = channel
        self._sharded = isinstance(pubsub, ClusterPubSub)
        self.confirmed = False
        """Whether Redis confirmed the subscription (set by `next_data`)."""

    async def subscribe(self) -> None:
        """SUBSCRIBE, or on a cluster SSUBSCRIBE."""
        if isinstance(self._pubsub, ClusterPubSub):
            await self._pubsub.ssubscribe(self._channel)
        else:
            await self._pubsub.subscribe(self._channel)
        redeliver_lost_cancellation()

    async def next_data(self) -> bytes | str:
        """The next message's payload. A channel silent for a while is probed: a
        connection that does not answer raises `ConnectionError`."""
        awaiting_pong = False
        while True:
            message = await self._next_message()
            redeliver_lost_cancellation()
            if message is None:
                # A silent channel and a dead connection look alike: ask.
                if awaiting_pong:
                    raise redis_errors.ConnectionError("subscription did not answer PING")
                await self._probe()
                redeliver_lost_cancellation()
                awaiting_pong = True
                continue
            awaiting_pong = False
            kind = text(message["type"])
            if kind in ("subscribe", "ssubscribe"):
                self.confirmed = True
            elif kind in ("message", "smessage"):
                data: bytes | str = message["data"]
                return data
            elif kind == "sunsubscribe":
                # The slot moved to another node (resharding, failover).
                raise redis_errors.ConnectionError("the channel's slot moved")

    async def aclose(self) -> None:
        """Unsubscribe and release the connection; never raises."""
        with suppress(Exception):
            await self._pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]  # redis-py leaves it bare

    async def _next_message(self) -> dict[str, Any] | None:
        if isinstance(self._pubsub, ClusterPubSub):
            message = await self._pubsub.get_sharded_message(timeout=SUBSCRIPTION_IDLE_SECONDS)
        else:
            message = await self._pubsub.get_message(timeout=SUBSCRIPTION_IDLE_SECONDS)
        return message

    async def _probe(self) -> None:
        """Make the subscription's connection answer something."""
        if isinstance(self._pubsub, ClusterPubSub):
            # SSUBSCRIBE again: answered on the very connection the messages come by.
            await self._pubsub.ssubscribe(self._channel)
        else:
            await self._pubsub.ping()


@contextmanager
def unavailable_on_failure() -> Iterator[None]:
    """Raise `StoreUnavailable` for an error that means Redis did not answer usefully."""
    try:
        yield
    except UNAVAILABLE_ERRORS as error:
        raise StoreUnavailable(f"Redis is unavailable: {error}") from error
    redeliver_lost_cancellation()


def redeliver_lost_cancellation() -> None:
    """Raise CancelledError when the current task was cancelled but is still running.

    redis-py sends with `asyncio.wait_for`, which on Python 3.11 swallows a cancellation
    that arrives just as the send completes: the task would carry on as if never
    cancelled, and whoever awaits it (a shutdown) would wait for ever.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def text(value: bytes | str) -> str:
    """A reply's string (the client does not decode replies: scripts return raw bytes)."""
    return value.decode("utf-8") if isinstance(value, bytes) else value
