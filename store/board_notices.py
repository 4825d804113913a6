"""Notices that a board was created or changed, from the instance that changed it to the others.

A notice carries only the board id; the receiver re-reads the row from the `boards` table,
the source of truth, so a lost or repeated notice costs nothing but latency (the registry's
periodic reload is the safety net: Redis pub/sub drops messages while a subscriber
reconnects). Redis pub/sub when Redis is configured; nothing in embedded mode (one process).
On a Redis Cluster the seed node is used: PUBLISH reaches subscribers on every node.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

import redis.asyncio as redis
from redis.exceptions import RedisError

from store.aio import cancel_until_done
from store.errors import StoreUnavailable

logger = logging.getLogger(__name__)

_RETRY_SECONDS = 1.0


class BoardNotices(Protocol):
    """Where board notices are sent and received."""

    async def publish(self, board_id: str) -> None:
        """Tell the other instances that `board_id` changed (best effort)."""
        ...

    async def listen(self, received: Callable[[str], Awaitable[None]]) -> None:
        """Call `received(board_id)` for every notice, until cancelled."""
        ...

    async def close(self) -> None:
        """Release the connection."""
        ...


class NoNotices:
    """Embedded mode: one process, nothing to tell."""

    async def publish(self, board_id: str) -> None:
        """Nothing to do."""

    async def listen(self, received: Callable[[str], Awaitable[None]]) -> None:
        """Wait for ever."""
        await asyncio.Event().wait()

    async def close(self) -> None:
        """Nothing to release."""


class RedisBoardNotices:
    """Notices on the Redis channel `<prefix>:boards`."""

    def __init__(self, url: str, channel: str) -> None:
        self._client = redis.Redis.from_url(url)
        self._channel = channel

    async def publish(self, board_id: str) -> None:
        """PUBLISH the id; a failure is logged (the others reload within their interval)."""
        try:
            await self._client.publish(self._channel, board_id)
        except (RedisError, OSError) as error:
            logger.warning("board notice for %r not sent: %s", board_id, error)

    async def listen(self, received: Callable[[str], Awaitable[None]]) -> None:
        """Subscribe and hand every notice on; resubscribe after a failure."""
        while True:
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._channel)
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        data = message["data"]
                        await received(data.decode() if isinstance(data, bytes) else str(data))
            except (RedisError, OSError) as error:
                logger.warning("board notices: %s; resubscribing", error)
                await asyncio.sleep(_RETRY_SECONDS)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()

    async def close(self) -> None:
        """Close the client's connections."""
        with contextlib.suppress(RedisError, OSError):
            await self._client.aclose()


def follow(
    notices: BoardNotices,
    refresh: Callable[[str], Awaitable[None]],
    reload: Callable[[], Awaitable[None]],
    *,
    reload_seconds: float,
    name: str,
    log: logging.Logger,
) -> list[asyncio.Task[None]]:
    """The tasks that keep a table's copy in memory current (the boards, the bans): `refresh`
    on each notice, and `reload` of the whole table every `reload_seconds`, the safety net
    for a lost notice. `unfollow` ends them."""
    return [
        asyncio.create_task(notices.listen(refresh), name=f"{name} notices"),
        asyncio.create_task(
            _reload_every(reload_seconds, reload, name, log), name=f"{name} reload"
        ),
    ]


async def unfollow(tasks: list[asyncio.Task[None]], notices: BoardNotices) -> None:
    """End the tasks of `follow` and close the notices' connection."""
    # Until each ends: a cancellation landing while the notices subscribe is swallowed.
    await cancel_until_done(tasks)
    await notices.close()


async def _reload_every(
    seconds: float, reload: Callable[[], Awaitable[None]], name: str, log: logging.Logger
) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            await reload()
        except StoreUnavailable as error:
            log.warning("reloading the %ss failed: %s", name, error)
