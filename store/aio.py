"""Small asyncio helpers the store and its consumers share: feeds, backoff, bounded shutdown.

Named `aio` for what it is about (asyncio plumbing), not for a layer: it imports only the
standard library, so `store` and `resolvers` may both use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, Final, TypeVar

T = TypeVar("T")

MAX_RESTART_BACKOFF: Final = 10.0
"""A feed that keeps failing is resubscribed at most this many seconds apart."""


async def close_iterator(iterator: AsyncIterator[Any] | None) -> None:
    """Close an async generator (it holds a subscription until closed); errors are ignored.

    Other iterators may have nothing to close.
    """
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        with contextlib.suppress(Exception):
            await aclose()


async def consume_resubscribing(
    subscribe: Callable[[], AsyncIterator[T]],
    handle: Callable[[T], None],
    *,
    running: Callable[[], bool],
    log: logging.Logger,
    what: str,
    restart_backoff: float,
    failure_level: int = logging.WARNING,
    resubscribe_at_end: bool = True,
    unsubscribed: Callable[[], None] = lambda: None,
    resubscribing: Callable[[], None] = lambda: None,
) -> None:
    """Feed every item of `subscribe()` to `handle` while `running()`; resubscribe after failures.

    A failure (an exception from the iterator) is logged on `log` at `failure_level`, with
    the traceback, and the feed is subscribed again after a backoff that starts at
    `restart_backoff` seconds, doubles up to `MAX_RESTART_BACKOFF` and resets once an item
    arrives. A feed that ends is subscribed again too (logged as a warning), unless
    `resubscribe_at_end` is false: then this returns. Items published between two
    subscriptions are lost: `unsubscribed` is called as soon as a subscription is closed,
    `resubscribing` just before the next one starts, so the caller can repair what the
    gap may have hidden. `handle` must not raise (a bug there ends the feed).
    """
    backoff = restart_backoff
    while running():
        iterator: AsyncIterator[T] | None = None
        try:
            iterator = subscribe()
            async for item in iterator:
                backoff = restart_backoff
                handle(item)
            if not resubscribe_at_end:
                return
            log.warning("%s ended; resubscribing in %.2fs", what, backoff)
        except Exception:
            log.log(
                failure_level, "%s failed; resubscribing in %.2fs", what, backoff, exc_info=True
            )
        finally:
            await close_iterator(iterator)
            unsubscribed()
        if not running():
            return
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, max(restart_backoff, MAX_RESTART_BACKOFF))
        resubscribing()


CANCEL_AGAIN_SECONDS = 0.05


async def cancel_until_done(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Cancel each task, again and again, until it ended; its cancellation is not raised,
    a failure of its own is.

    For a task that must end (a listener that loops for ever): redis-py swallows a
    cancellation that lands while a pub/sub subscription connects, and the loop would go on.
    """
    for task in tasks:
        while not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=CANCEL_AGAIN_SECONDS)
        if not task.cancelled():
            await task  # it ended on its own: its failure, if any, is raised


async def cancel_and_wait(
    tasks: Iterable[asyncio.Task[Any]], *, timeout: float, log: logging.Logger, what: str
) -> None:
    """Cancel tasks and wait for them at most `timeout` seconds (a warning names the rest).

    Bounded: a driver that swallows a cancellation must not hold up shutdown; closing the
    connections underneath afterwards ends whatever is left.
    """
    pending_tasks = [task for task in tasks if not task.done()]
    for task in pending_tasks:
        task.cancel()
    if not pending_tasks:
        return
    _, pending = await asyncio.wait(pending_tasks, timeout=timeout)
    if pending:
        log.warning("%s: %d tasks did not stop in time", what, len(pending))
