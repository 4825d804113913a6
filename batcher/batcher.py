"""`WriteBatcher`: a bounded buffer of applied score events, flushed to the history in bulk.

Callers reserve room *before* they apply increments to the live ranking, and commit
the applied events into the reserved room afterwards::

    with batcher.reserve(len(increments)) as reservation:
        outcomes = await ranking.increment(increments)
        persisted = reservation.commit(events_of(outcomes))

so an increment applied to Redis always has a place in the buffer, and while the
history is down new increments are refused before Redis is touched.

One task flushes: as soon as `flush_max_events` are buffered, or once the oldest
buffered event has waited `flush_interval`, it writes the oldest events with one
`HistoryWrites.append` call, and goes again at once while that many are pending. A flush
takes everything waiting, up to `flush_catch_up_events` (at least `flush_max_events`; by
default just that): normally one trigger's worth, but when the history fell behind (the
flusher waits for the database and for its turn on a busy event loop) one statement
catches up on several triggers' worth, instead of paying one round trip, commit and loop
turn per `flush_max_events`. After a failed write, flushes take `flush_max_events` until
one succeeds.

A failed write keeps its events at the head of the buffer (order preserved), marks the
batcher unhealthy (reservations refused) and is retried with exponential backoff; the
first write that succeeds makes it healthy again. The history skips events it already
stored, so a retried write never counts an event twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import itertools
import logging
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType
from typing import Protocol

from batcher.barriers import HELD, Barriers
from store.errors import StoreUnavailable
from store.models import ScoreEvent
from store.ports import HistoryWrites

logger = logging.getLogger(__name__)


class RefusalReason(StrEnum):
    """Why the batcher refuses new increments (the text goes into the client's error)."""

    BUFFER_FULL = "buffer full"
    HISTORY_UNAVAILABLE = "history unavailable"
    CLOSING = "closing"


class WriteRefused(Exception):
    """No room for new increments: retry later. `reason` says why."""

    def __init__(self, reason: RefusalReason) -> None:
        super().__init__(reason)
        self.reason: RefusalReason = reason


class FlushObserver(Protocol):
    """Told about every flush (for metrics)."""

    def flushed(self, events: int, seconds: float) -> None:
        """A flush of `events` events succeeded after `seconds`."""
        ...

    def flush_failed(self, events: int, seconds: float) -> None:
        """A flush of `events` events failed after `seconds`; it will be retried."""
        ...


@dataclass(slots=True)
class _Commit:
    """How many of a commit's events are still buffered, since when, and its future."""

    left: int
    buffered_at: float
    persisted: asyncio.Future[None]


def _retrieve(future: asyncio.Future[None]) -> None:
    # Marks a failure as seen, so a future nobody awaits never logs
    # "exception was never retrieved"; awaiting it still raises.
    if not future.cancelled():
        future.exception()


class Reservation:
    """Room for up to `count` events in the buffer, held until committed or cancelled.

    A context manager: leaving the block without `commit` cancels the reservation
    (also when the block raises), which frees the room.
    """

    def __init__(self, batcher: WriteBatcher, count: int, epoch: int = 0) -> None:
        self._batcher = batcher
        self._count = count
        self._open = True
        self._epoch = epoch
        self._parked = False
        self._held: contextvars.Token[Reservation | None] | None = None

    @property
    def count(self) -> int:
        """How many events the reservation holds room for."""
        return self._count

    def commit(self, events: Sequence[ScoreEvent]) -> asyncio.Future[None]:
        """Move `events` (at most `count`) into the buffer; unused room is freed.

        The future resolves once every one of them is committed to the history, or
        fails with `StoreUnavailable` when the batcher closes before it could write
        them. Ignoring it is fine: it never logs an unretrieved exception.
        """
        if not self._open:
            raise RuntimeError("this reservation was already committed or cancelled")
        if len(events) > self._count:
            raise ValueError(f"{len(events)} events committed into room for {self._count}")
        self._open = False
        self._settle()
        return self._batcher._commit(self._count, events)

    def cancel(self) -> None:
        """Give the room back (nothing when already committed or cancelled)."""
        if self._open:
            self._open = False
            self._settle()
            self._batcher._release(self._count)

    def _settle(self) -> None:
        barriers = self._batcher._barriers
        if self._parked:
            self._parked = False
            barriers.unpark(self._epoch)
        barriers.settled(self._epoch)

    def __enter__(self) -> Reservation:
        self._held = HELD.set(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._held is not None:
            HELD.reset(self._held)
            self._held = None
        self.cancel()


class WriteBatcher:
    """Buffers applied score events and writes them to the history in bulk (see module doc)."""

    def __init__(
        self,
        history: HistoryWrites,
        *,
        flush_interval: float = 0.1,
        flush_max_events: int = 500,
        flush_catch_up_events: int | None = None,
        max_buffered_events: int = 100_000,
        retry_initial: float = 0.05,
        retry_max: float = 2.0,
        observer: FlushObserver | None = None,
    ) -> None:
        if flush_interval <= 0 or retry_initial <= 0 or retry_max < retry_initial:
            raise ValueError("flush_interval and retry_initial > 0, retry_max >= retry_initial")
        if not 1 <= flush_max_events <= max_buffered_events:
            raise ValueError("need 1 <= flush_max_events <= max_buffered_events")
        # Never below a normal flush: raising flush_max_events alone keeps working.
        flush_catch_up_events = max(flush_catch_up_events or 0, flush_max_events)
        self._history = history
        self._flush_interval = flush_interval
        self._flush_max_events = flush_max_events
        self._flush_catch_up_events = flush_catch_up_events
        self._max_buffered_events = max_buffered_events
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self._observer = observer

        self._buffer: deque[ScoreEvent] = deque()
        self._commits: deque[_Commit] = deque()  # a record per commit, not per event
        self._reserved = 0
        self._healthy = True
        self._closing = False
        self._closed = False
        self._closer: asyncio.Task[int] | None = None
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._barriers = Barriers()  # `flushed_through_now`, `parking`

    # State

    @property
    def depth(self) -> int:
        """Events buffered and not yet persisted (including a write in progress)."""
        return len(self._buffer)

    @property
    def reserved(self) -> int:
        """Room held by open reservations."""
        return self._reserved

    @property
    def healthy(self) -> bool:
        """False from a failed write until the next successful one (reservations refused)."""
        return self._healthy

    # Lifecycle

    async def start(self) -> None:
        """Start the flushing task (once)."""
        if self._closing:
            raise RuntimeError("the batcher is closed")
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="write batcher")

    async def close(self, timeout: float) -> int:
        """Refuse new reservations, write everything buffered (retrying), stop.

        Open reservations may still commit while the drain runs. Returns how many
        buffered events could not be written within `timeout` seconds: 0 normally
        (logged as an error otherwise). Their commit futures fail with
        `StoreUnavailable`. A write cancelled at the deadline counts as not written,
        though the database may have committed it just before.
        """
        if self._closer is None:
            self._closing = True
            self._wakeup.set()
            self._closer = asyncio.create_task(self._drain(timeout), name="write batcher close")
        return await asyncio.shield(self._closer)

    async def _drain(self, timeout: float) -> int:
        if self._task is None:  # never started: drain anyway
            self._task = asyncio.create_task(self._run(), name="write batcher drain")
        task = self._task
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        except Exception:
            logger.exception("the write batcher's flushing task failed")
        lost = self._abandon_buffer()
        if self._reserved:
            logger.warning(
                "write batcher closed with %d events still reserved and not committed",
                self._reserved,
            )
        self._closed = True
        return lost

    async def persisted_so_far(self) -> None:
        """Return once every event committed so far is in the history (an erasure's fence:
        what it deletes must not arrive after it); `StoreUnavailable` when the batcher
        closes first."""
        if self._commits:
            # Flushes go in buffer order: once the last commit is written, so is every one.
            await asyncio.shield(self._commits[-1].persisted)

    # Reservations

    def reserve(self, count: int) -> Reservation:
        """Room for `count` events, or `WriteRefused` (closing, history down, buffer full)."""
        if count < 0:
            raise ValueError("count must be >= 0")
        if self._closing:
            raise WriteRefused(RefusalReason.CLOSING)
        if not self._healthy:
            raise WriteRefused(RefusalReason.HISTORY_UNAVAILABLE)
        if len(self._buffer) + self._reserved + count > self._max_buffered_events:
            raise WriteRefused(RefusalReason.BUFFER_FULL)
        self._reserved += count
        return Reservation(self, count, self._barriers.opened())

    async def flushed_through_now(self, *, skip_parked: bool = False) -> None:
        """Wait until every event committed before this call, or committed later into a
        reservation taken before it, is written to the history (seasons' watermark).

        With `skip_parked` (the rebuild fence), not for reservations parked in a recovery
        (`parking`; batcher/barriers.py says why). Raises `StoreUnavailable` when the
        batcher closes before it could write them.
        """
        await self._barriers.wait(skip_parked=skip_parked)
        if self._commits:
            await asyncio.shield(self._commits[-1].persisted)

    @contextlib.contextmanager
    def parking(self) -> Iterator[None]:
        """Park the current task's reservation while it waits for a recovery (barriers.py)."""
        reservation = HELD.get()
        if reservation is None or not reservation._open or reservation._parked:
            yield
            return
        reservation._parked = True
        self._barriers.park(reservation._epoch)
        try:
            yield
        finally:
            if reservation._parked:
                reservation._parked = False
                self._barriers.unpark(reservation._epoch)
                # Taken anew: a barrier begun while it was parked did not wait for it.
                self._barriers.settled(reservation._epoch)
                reservation._epoch = self._barriers.opened()

    def _release(self, count: int) -> None:
        self._reserved -= count
        if self._closing:
            self._wakeup.set()

    def _commit(self, reserved: int, events: Sequence[ScoreEvent]) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_retrieve)
        self._reserved -= reserved
        if not events:
            future.set_result(None)
            if self._closing:
                self._wakeup.set()
            return future
        if self._closed:
            logger.error(
                "%d events committed after the write batcher closed: not written", len(events)
            )
            future.set_exception(StoreUnavailable("the write batcher is closed"))
            return future
        was_empty = not self._buffer
        self._buffer.extend(events)
        self._commits.append(_Commit(len(events), time.monotonic(), future))
        # Wake the flusher only when its schedule changes (not on every commit).
        if was_empty or self._closing or len(self._buffer) >= self._flush_max_events:
            self._wakeup.set()
        return future

    # Flushing

    async def _run(self) -> None:
        delay = self._retry_initial
        while True:
            if not await self._wait_until_due():
                return
            if await self._flush():
                delay = self._retry_initial
            else:
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._retry_max)

    async def _wait_until_due(self) -> bool:
        """Wait until a flush is due; False once closing with nothing left to write."""
        while True:
            self._wakeup.clear()
            timeout: float | None = None
            if self._buffer:
                if self._closing or not self._healthy:
                    return True
                if len(self._buffer) >= self._flush_max_events:
                    return True
                timeout = self._commits[0].buffered_at + self._flush_interval - time.monotonic()
                if timeout <= 0:
                    return True
            elif self._closing and self._reserved == 0:
                return False
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wakeup.wait()

    async def _flush(self) -> bool:
        """Write the oldest events with one append; True when it succeeded."""
        # After a failure, retry at the normal size until one succeeds: a slow history may
        # manage a normal flush within its timeout but never a catch-up one.
        size = self._flush_catch_up_events if self._healthy else self._flush_max_events
        batch = list(itertools.islice(self._buffer, size))
        started = time.monotonic()
        try:
            await self._history.append(batch)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            # Log the text, not the exception: a retained log record would keep its
            # traceback, and with it this batch (and its futures), alive.
            reason = f"{type(error).__name__}: {error}"
            seconds = time.monotonic() - started
            self._notify(failed=True, events=len(batch), seconds=seconds)
            if self._healthy:
                self._healthy = False
                logger.error(
                    "writing %d events to the history failed, refusing writes until it "
                    "works again (%d buffered): %s",
                    len(batch),
                    len(self._buffer),
                    reason,
                    exc_info=not isinstance(error, StoreUnavailable),
                )
            else:
                logger.warning("history write retry failed (%d buffered): %s", self.depth, reason)
            return False
        seconds = time.monotonic() - started
        written = len(batch)
        for _ in batch:
            self._buffer.popleft()
        while written:  # the commits these complete, oldest first
            commit = self._commits[0]
            if commit.left > written:
                commit.left -= written
                break
            written -= commit.left
            self._commits.popleft()
            if not commit.persisted.done():
                commit.persisted.set_result(None)
        if not self._healthy:
            self._healthy = True
            logger.warning("history writes work again; accepting writes (%d buffered)", self.depth)
        self._notify(failed=False, events=len(batch), seconds=seconds)
        return True

    def _notify(self, *, failed: bool, events: int, seconds: float) -> None:
        if self._observer is None:
            return
        try:
            (self._observer.flush_failed if failed else self._observer.flushed)(events, seconds)
        except Exception:
            logger.exception("flush observer failed")

    def _abandon_buffer(self) -> int:
        """Fail whatever is still buffered after close; return how many events."""
        lost = len(self._buffer)
        if lost:
            logger.error(
                "write batcher closed with %d events NOT written to the history "
                "(they are in the live ranking only)",
                lost,
            )
        error = StoreUnavailable(f"closed before {lost} buffered events could be written")
        self._buffer.clear()
        while self._commits:
            persisted = self._commits.popleft().persisted
            if not persisted.done():
                persisted.set_exception(error)
        return lost
