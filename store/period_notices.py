"""`periodEnded` notices: a `PeriodResult` from the instance that computed it to every
instance's subscribers.

Redis pub/sub on the channel `<prefix>:period-ended` when Redis is configured (on a
Redis Cluster the seed node: PUBLISH reaches subscribers on every node); in-process in
embedded mode (one process). The message is the result's JSON (`store.period_codec`).
Delivery is best effort like every pub/sub message: the result itself is stored
(`period_results`), and the webhook is the at-least-once path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

import redis.asyncio as redis
from redis.exceptions import RedisError

from store.models import PeriodResult
from store.period_codec import decode, encode

logger = logging.getLogger(__name__)

_RETRY_SECONDS = 1.0
_READ_SECONDS = 0.2

Received = Callable[[PeriodResult], Awaitable[None]]


class PeriodNotices(Protocol):
    """Where period results are announced and heard."""

    async def publish(self, result: PeriodResult) -> None:
        """Announce a result to every instance, this one included (best effort)."""
        ...

    async def listen(self, received: Received) -> None:
        """Call `received(result)` for every announced result, until closed."""
        ...

    async def subscribed(self) -> None:
        """Wait until this instance hears announcements."""
        ...

    def stop(self) -> None:
        """Make `listen` return soon."""
        ...

    async def close(self) -> None:
        """Stop listening (`listen` returns soon after) and release the connection."""
        ...


class InProcessPeriodNotices:
    """Embedded mode: the one process hears what it announces."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[PeriodResult | None] = asyncio.Queue()

    async def publish(self, result: PeriodResult) -> None:
        """Hand the result to this process's listener."""
        self._queue.put_nowait(result)

    async def listen(self, received: Received) -> None:
        """Hand on every result, until stopped."""
        while (result := await self._queue.get()) is not None:
            await received(result)

    def stop(self) -> None:
        """Make `listen` return."""
        self._queue.put_nowait(None)

    async def subscribed(self) -> None:
        """Always: the queue is there from the start."""

    async def close(self) -> None:
        """Nothing to release."""


class RedisPeriodNotices:
    """Notices on a Redis channel."""

    def __init__(self, url: str, channel: str) -> None:
        self._client = redis.Redis.from_url(url)
        self._channel = channel
        self._subscribed = asyncio.Event()
        self._closing = False

    async def publish(self, result: PeriodResult) -> None:
        """PUBLISH the result; a failure is logged."""
        try:
            await self._client.publish(self._channel, encode(result))
        except (RedisError, OSError) as error:
            logger.warning(
                "periodEnded notice for %s/%s not sent: %s", result.board, result.period, error
            )

    async def subscribed(self) -> None:
        """Wait until the listener is subscribed (tests, start-up)."""
        await self._subscribed.wait()

    async def listen(self, received: Received) -> None:
        """Subscribe and hand every result on; resubscribe after a failure. Returns once
        `close` is called: the loop is left between reads rather than cancelled (a pub/sub
        connection cancelled while it subscribes was seen to hang the event loop's shutdown).
        """
        while not self._closing:
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._channel)
                self._subscribed.set()
                while not self._closing:
                    message = await pubsub.get_message(timeout=_READ_SECONDS)
                    if message is None or message.get("type") != "message":
                        continue
                    try:
                        result = decode(message["data"])
                    except ValueError as error:
                        logger.warning("ignoring a malformed periodEnded notice: %s", error)
                        continue
                    await received(result)
            except (RedisError, OSError) as error:
                self._subscribed.clear()
                logger.warning("periodEnded notices: %s; resubscribing", error)
                await asyncio.sleep(_RETRY_SECONDS)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()

    def stop(self) -> None:
        """Make `listen` return after its current read."""
        self._closing = True

    async def close(self) -> None:
        """Close the client's connections."""
        with contextlib.suppress(RedisError, OSError):
            await self._client.aclose()
