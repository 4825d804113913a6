"""A watcher's bounded queue (`Mailbox`) and the async iterator its consumer holds (`Subscription`).

Generic over what is queued: the live feeds (resolvers/live.py) put rank updates and top lists
in, a subscription's consumer takes them out. A full queue merges its backlog into the newest
item, so a slow consumer gets the newest state, never an unbounded backlog; ending the
iterator in any way unregisters the watcher at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class MailboxClosed(Exception):
    """The watcher was unregistered or live updates were closed: the iterator ends."""


class Mailbox(Generic[T]):
    """A watcher's bounded queue. When full, everything queued is merged into the newest item.

    A list and a future made only while the consumer waits, not a deque and an
    `asyncio.Event` (760 bytes each even when empty): one is kept per idle subscriber
    (docs/performance.md, "Memory per WebSocket subscriber"). One consumer per mailbox.
    """

    __slots__ = ("_capacity", "_closed", "_items", "_merge", "_waiter")

    def __init__(self, capacity: int, merge: Callable[[T, T], T]) -> None:
        self._capacity = max(1, capacity)
        self._merge = merge
        self._items: list[T] = []
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: T) -> None:
        """Queue an item; past capacity, collapse the backlog into the newest state."""
        if self._closed:
            return
        items = self._items
        if len(items) >= self._capacity:
            merged = items[0]
            for queued in items[1:]:
                merged = self._merge(merged, queued)
            item = self._merge(merged, item)
            items.clear()
        items.append(item)
        self._wake()

    def close(self) -> None:
        """End the consumer's iteration, dropping anything still queued."""
        self._closed = True
        self._items.clear()
        self._wake()

    async def get(self) -> T:
        """The oldest queued item; raises `MailboxClosed` once closed."""
        while not self._items:
            if self._closed:
                raise MailboxClosed
            waiter = self._waiter
            if waiter is None or waiter.done():
                # A waiter left done by a cancelled get is replaced, never awaited again.
                waiter = self._waiter = asyncio.get_running_loop().create_future()
            await waiter
        return self._items.pop(0)

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)


class Subscription(Generic[T]):
    """The async iterator a watcher's consumer holds.

    Ending it in any way (exhaustion, `aclose`, cancellation of the awaiting task, or
    dropping it) unregisters the watcher at once. The registry holds the watcher, never
    this object, so that dropping it is noticed.
    """

    __slots__ = ("_attach", "_attached", "_detach", "_done", "_mailbox")

    def __init__(
        self,
        attach: Callable[[], Awaitable[None]],
        mailbox: Mailbox[T],
        detach: Callable[[], None],
    ) -> None:
        self._attach = attach
        self._mailbox = mailbox
        self._detach = detach
        self._attached = False
        self._done = False

    def __aiter__(self) -> Subscription[T]:
        return self

    async def __anext__(self) -> T:
        if self._done:
            raise StopAsyncIteration
        try:
            if not self._attached:
                self._attached = True
                await self._attach()
            return await self._mailbox.get()
        except MailboxClosed:
            self._finish()
            raise StopAsyncIteration from None
        except BaseException:
            # Cancelled (the WebSocket went away) or the first read failed: nobody listens.
            self._finish()
            raise

    async def aclose(self) -> None:
        """Stop watching."""
        self._finish()

    def __del__(self) -> None:
        self._finish()

    def _finish(self) -> None:
        if not self._done:
            self._done = True
            self._detach()
