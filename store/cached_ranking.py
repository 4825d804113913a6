"""A per-instance cache of `top()` reads in front of the ranking store's `TopFront`.

A read storm on a board's top (every game frontend polling `topPlayers(limit: 10)`) would
otherwise cost one Redis round trip per request. `TopCache` serves the same
(board, period, limit, offset) from a snapshot while it is younger than `max_staleness`,
counted from the moment the read that produced it *started*, so an answer is never older
than the bound. Within the bound, snapshots are dropped early when they may be wrong:

- this instance's own writes (`increment()`, the rebuild's `load()`, moderation's
  `remove()`, `restore()` and `erase()`) go through the cache and drop the windows they can
  change as soon as they return (a client that writes then reads on one instance sees its
  write);
- change events from every instance (the board's change feed, consumed by one background
  task per board, or relayed to the live updates through `changes()`) drop the windows an
  event can reach. Writes publish only boards some instance holds (`ChangeFeed.watch`):
  the cache holds a board from its first read (before that read) until it has not been
  read for `hold_idle`; the read after that is older than the bound, and holds it again.

The cache wraps only those calls (`store.ports.TopFront`); every other read and the
rebuild's bookkeeping go straight to the ranking store, which the cache neither pings nor
closes (server/resources.py wires both).

A snapshot's player count (each player's topPercent) is only held to the staleness bound: a
player joining below every cached window changes the count but drops nothing, as dropping
every window of a period on each newcomer would empty the cache under a busy period's writes.

Misses are single flight: concurrent misses of one key share one inner read. A read that an
invalidation overtakes still answers its waiters (it started before the change, like any
read racing a write) but is never cached. Failed reads are not cached: their waiters get the
error, so `RankingNotLoaded` still reaches the caller that rebuilds the period.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cachetools import LRUCache

from store.aio import cancel_and_wait, close_iterator, consume_resubscribing
from store.models import IncrementOutcome, RankedPlayer, RemovedScore, ScoreChange, ScoreIncrement
from store.ports import TopFront

logger = logging.getLogger(__name__)

DEFAULT_MAX_ENTRIES = 1024
HOLD_IDLE_SECONDS = 30.0
"""A board the cache has not read for this long is released (`ChangeFeed.unwatch`): a board
whose top was read once, then never, stops costing every write a change message."""
_CLOSE_WAIT_SECONDS = 2.0

_Key = tuple[str, str, int, int]
"""(board, period, limit, offset) of one cached top() call."""
_Period = tuple[str, str]
_Window = tuple[int, int]
"""(limit, offset)."""


@dataclass(frozen=True, slots=True)
class _Snapshot:
    players: list[RankedPlayer]
    read_started: float


class _Snapshots(LRUCache[_Key, _Snapshot]):
    """The snapshots, least recently used evicted first; an eviction is reported."""

    def __init__(self, maxsize: int, evicted: Callable[[_Key], None]) -> None:
        super().__init__(maxsize)
        self._evicted = evicted

    def popitem(self) -> tuple[_Key, _Snapshot]:
        """Evict the least recently used snapshot (cachetools' hook for evictions)."""
        key, snapshot = super().popitem()
        self._evicted(key)
        return key, snapshot


@dataclass(eq=False, slots=True)
class _Flight:
    """One inner read in progress. It may cache its result only while still registered."""

    read_started: float
    task: asyncio.Task[list[RankedPlayer]] | None = None


class TopCache:
    """`TopFront` that serves `top()` from a short-lived snapshot; the calls that can change a
    top pass through and drop what they reach.

    Counters for tests and metrics: `hits` (answered from a snapshot), `misses` (not: they
    joined or started an inner read), `inner_reads` (reads sent to the inner store) and
    `invalidations` (snapshots or in-flight reads dropped by a write or a change event).
    """

    def __init__(
        self,
        inner: TopFront,
        max_staleness: float,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
        restart_backoff: float = 0.5,
        hold_idle: float = HOLD_IDLE_SECONDS,
    ) -> None:
        if not max_staleness > 0:
            raise ValueError("max_staleness must be positive (no cache: do not wrap the store)")
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._inner = inner
        self._max_staleness = max_staleness
        self._clock = clock
        self._restart_backoff = restart_backoff
        self._snapshots = _Snapshots(max_entries, self._unindex_if_unused)
        self._flights: dict[_Key, _Flight] = {}
        # The windows of each period that have a snapshot or a flight: an event visits only
        # its own period's windows, never the whole cache.
        self._windows: dict[_Period, set[_Window]] = {}
        self._feeds: dict[str, asyncio.Task[None]] = {}
        # Boards whose changes some consumer (the live subscriptions) is reading through
        # `changes()`: those relay the events, so no second subscription is needed.
        self._relays: dict[str, int] = {}
        # Boards held on the inner store for the cached windows (`_hold`), with the time of
        # their last read; released `hold_idle` after it (never sooner than the bound: every
        # snapshot of a released board is then too old to serve).
        self._held: dict[str, float] = {}
        self._hold_idle = max(hold_idle, max_staleness)
        self._releaser: asyncio.Task[None] | None = None
        self._closed = False
        self.hits = 0
        self.misses = 0
        self.inner_reads = 0
        self.invalidations = 0

    # Cached reads

    async def top(self, board: str, period: str, limit: int, offset: int) -> list[RankedPlayer]:
        """Players ranked offset+1 .. offset+limit: a snapshot at most `max_staleness` old."""
        if self._closed or limit < 0 or offset < 0:
            return await self._inner.top(board, period, limit, offset)
        key = (board, period, limit, offset)
        now = self._clock()
        if board in self._held:
            self._held[board] = now
        snapshot = self._snapshots.get(key)
        if snapshot is not None:
            if now - snapshot.read_started < self._max_staleness:
                self.hits += 1
                # A copy: callers own what they get, the snapshot stays intact.
                return list(snapshot.players)
            self._forget_snapshot(key)
        self.misses += 1
        flight = self._flights.get(key)
        # Joining a read that started longer ago than the bound could serve data older
        # than the bound: start a fresh one (at most one more per key per bound).
        if flight is None or now - flight.read_started >= self._max_staleness:
            flight = self._start_flight(key, now)
        assert flight.task is not None
        # Shielded: a waiter that is cancelled (its client went away) must not cancel
        # the read the other waiters share.
        return list(await asyncio.shield(flight.task))

    def _start_flight(self, key: _Key, now: float) -> _Flight:
        self._follow(key[0])
        flight = _Flight(read_started=now)
        # Registering replaces an older flight of the key: that one no longer caches.
        self._flights[key] = flight
        self._windows.setdefault((key[0], key[1]), set()).add((key[2], key[3]))
        self.inner_reads += 1
        flight.task = asyncio.create_task(
            self._read(key, flight), name=f"top cache read {key[0]}/{key[1]}"
        )
        return flight

    async def _hold(self, board: str) -> None:
        """Hold the board on the inner store (once): its writes from every instance publish
        from now on, so the read that follows sees whatever published nothing."""
        if board in self._held:
            return
        await self._inner.watch(board)
        if board in self._held or self._closed:
            self._inner.unwatch(board)  # a concurrent first read, or closed meanwhile
            return
        self._held[board] = self._clock()
        if self._releaser is None or self._releaser.done():
            self._releaser = asyncio.create_task(self._release_idle(), name="top cache holds")

    async def _release_idle(self) -> None:
        """Release each board not read for `hold_idle`, until none is held."""
        while self._held:
            await asyncio.sleep(self._hold_idle / 3)
            now = self._clock()
            for board, last_read in list(self._held.items()):
                if now - last_read >= self._hold_idle:
                    del self._held[board]
                    self._inner.unwatch(board)

    async def _read(self, key: _Key, flight: _Flight) -> list[RankedPlayer]:
        board, period, limit, offset = key
        try:
            await self._hold(board)
            players = await self._inner.top(board, period, limit, offset)
        except BaseException:
            if self._flights.get(key) is flight:
                del self._flights[key]
                self._unindex_if_unused(key)
            raise
        if self._flights.get(key) is flight:
            del self._flights[key]
            self._remember(key, _Snapshot(players, flight.read_started))
        return players

    def _remember(self, key: _Key, snapshot: _Snapshot) -> None:
        # An eviction this causes unindexes the evicted key (`_Snapshots.popitem`).
        self._snapshots[key] = snapshot

    def _forget_snapshot(self, key: _Key) -> None:
        del self._snapshots[key]
        self._unindex_if_unused(key)

    def _unindex_if_unused(self, key: _Key) -> None:
        if key in self._snapshots or key in self._flights:
            return
        period = (key[0], key[1])
        windows = self._windows.get(period)
        if windows is not None:
            windows.discard((key[2], key[3]))
            if not windows:
                del self._windows[period]

    # Invalidation

    def _invalidate(self, board: str, period: str, reach: float) -> None:
        """Drop the period's snapshots and flights whose window a change at rank `reach` touches.

        A player who stood, or now stands, at rank r can change only the windows that end
        at or after r (position >= rank, so a window ending before r is untouched). 0
        drops every window of the period.
        """
        windows = self._windows.get((board, period))
        if not windows:
            return
        for limit, offset in tuple(windows):
            if reach > offset + limit:
                continue
            key = (board, period, limit, offset)
            dropped = self._snapshots.pop(key, None) is not None
            # Its waiters still get the read; it just may not be cached.
            dropped = self._flights.pop(key, None) is not None or dropped
            if dropped:
                self.invalidations += 1
            windows.discard((limit, offset))
        if not windows:
            del self._windows[(board, period)]

    def _drop_board(self, board: str) -> None:
        for board_id, period in [key for key in self._windows if key[0] == board]:
            self._invalidate(board_id, period, 0)

    def _apply_change(self, change: ScoreChange) -> None:
        # Every instance sees every change: skip the arithmetic when nothing of the period
        # is cached or in flight (the common case when nobody reads the top).
        if (change.board, change.period) in self._windows:
            self._invalidate(change.board, change.period, _reach(change.rank, change.previous_rank))

    # Writes: pass through, then drop what they changed

    async def increment(
        self, increments: Sequence[ScoreIncrement], *, ranks: bool = True
    ) -> list[IncrementOutcome]:
        """Apply through the inner store; then drop the windows the applied increments reach
        (the ranks are asked for when a window of the period is cached: a rank of 0, not
        computed, drops every window)."""
        if not ranks:
            ranks = any((item.board, item.period) in self._windows for item in increments)
        try:
            outcomes = await self._inner.increment(increments, ranks=ranks)
        except BaseException:
            # Failed or unknown (a lost reply may hide an applied script): drop everything.
            for board, period in {(item.board, item.period) for item in increments}:
                self._invalidate(board, period, 0)
            raise
        reaches: dict[_Period, float] = {}
        for outcome in outcomes:
            board_period = (outcome.increment.board, outcome.increment.period)
            if not outcome.applied or board_period not in self._windows:
                continue
            reach = _reach(outcome.rank, outcome.previous_rank)
            reaches[board_period] = min(reach, reaches.get(board_period, math.inf))
        for (board, period), reach in reaches.items():
            self._invalidate(board, period, reach)
        return outcomes

    async def load(
        self,
        board: str,
        period: str,
        totals: Iterable[tuple[str, int]],
        client_events: Iterable[tuple[str, str, int]],
        *,
        instants: Mapping[str, int] | None = None,
        clock: int | None = None,
        writers: Iterable[tuple[str, int]] = (),
    ) -> None:
        """Replace the period's ranking through the inner store; drop every window of it."""
        try:
            await self._inner.load(
                board,
                period,
                totals,
                client_events,
                instants=instants,
                clock=clock,
                writers=writers,
            )
        finally:
            self._invalidate(board, period, 0)

    # Moderation: pass through, then drop what it changed

    async def remove(self, board: str, period: str, username: str) -> RemovedScore | None:
        """Take the player out through the inner store; drop every window of the period."""
        try:
            return await self._inner.remove(board, period, username)
        finally:
            self._invalidate(board, period, 0)

    async def restore(
        self, board: str, period: str, username: str, total: int, instant: int = 0
    ) -> bool:
        """Set the player's total through the inner store; drop every window of the period."""
        try:
            return await self._inner.restore(board, period, username, total, instant)
        finally:
            self._invalidate(board, period, 0)

    async def erase(self, board: str, period: str, username: str, event_ids: Sequence[str]) -> int:
        """Erase through the inner store; drop every window of the period."""
        try:
            return await self._inner.erase(board, period, username, event_ids)
        finally:
            self._invalidate(board, period, 0)

    # Change feeds

    def changes(self, board: str, *, watch: bool = True) -> AsyncIterator[ScoreChange]:
        """The inner store's change feed; each change drops what it reaches before it is seen.

        So a consumer that re-reads the top on a change (live subscriptions) never gets
        the snapshot from before it.
        """
        return self._relayed_changes(board, watch)

    async def watch(self, board: str) -> None:
        """Hold the board on the inner store."""
        await self._inner.watch(board)

    def unwatch(self, board: str) -> None:
        """Release one hold on the inner store."""
        self._inner.unwatch(board)

    async def _relayed_changes(self, board: str, watch: bool) -> AsyncIterator[ScoreChange]:
        # The cache's own hold (`_hold`) keeps its windows' changes published.
        changes = self._inner.changes(board, watch=watch)
        self._relays[board] = self._relays.get(board, 0) + 1
        # This relay now drops what each change reaches: our own subscription would only
        # decode every event a second time.
        own = self._feeds.pop(board, None)
        if own is not None:
            own.cancel()
        try:
            async for change in changes:
                self._apply_change(change)
                yield change
        finally:
            self._relays[board] -= 1
            if not self._relays[board]:
                del self._relays[board]
            # Changes published until somebody subscribes again are lost.
            self._drop_board(board)
            await close_iterator(changes)

    def _follow(self, board: str) -> None:
        """Start the board's background consumer of change events, unless it runs."""
        if board not in self._feeds and board not in self._relays and not self._closed:
            self._feeds[board] = asyncio.create_task(
                self._consume(board), name=f"top cache feed {board}"
            )

    async def _consume(self, board: str) -> None:
        """Drop what each change of the board reaches; resubscribe after a failure."""
        try:
            await consume_resubscribing(
                # Only the cached windows need the changes: `_hold` holds the board for them.
                lambda: self._inner.changes(board, watch=False),
                self._apply_change,
                running=lambda: not self._closed,
                log=logger,
                what=f"top cache: the change feed of {board}",
                restart_backoff=self._restart_backoff,
                # Ended (the inner store closed): the next cached read starts another.
                resubscribe_at_end=False,
                # Changes published while unsubscribed are lost.
                unsubscribed=lambda: self._drop_board(board),
            )
        finally:
            if self._feeds.get(board) is asyncio.current_task():
                del self._feeds[board]

    # Lifecycle

    async def close(self) -> None:
        """Stop the background consumers and in-flight reads (the ranking store stays open:
        its owner closes it); later reads pass straight through."""
        self._closed = True
        for board in self._held:
            self._inner.unwatch(board)
        self._held.clear()
        tasks: list[asyncio.Task[Any]] = list(self._feeds.values())
        if self._releaser is not None:
            tasks.append(self._releaser)
        tasks += [flight.task for flight in self._flights.values() if flight.task is not None]
        self._feeds.clear()
        self._flights.clear()
        self._snapshots.clear()
        self._windows.clear()
        await cancel_and_wait(tasks, timeout=_CLOSE_WAIT_SECONDS, log=logger, what="top cache")


def _reach(rank: int, previous_rank: int | None) -> float:
    """The best rank a move touched: windows ending before it cannot have changed."""
    return rank if previous_rank is None else min(rank, previous_rank)
