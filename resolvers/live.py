"""Live updates of this instance's subscriptions: one store feed per board, fanned out to watchers.

Each board has exactly one consumer of `changes(board)` per instance, whatever the number
of subscriptions. Every event is turned into watcher updates on the event loop without a
store round trip per watcher: a watched player's rank moves by one when another player
crosses its score, and top lists are re-read (coalesced) only when an event can change them.

Pub/sub may drop messages, so every `resync_interval` the watched players and top lists
are re-read and corrected. Each watcher has a bounded queue: a slow consumer gets the
newest state, never an unbounded backlog.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Generic, Protocol, TypeVar

from store.aio import cancel_and_wait, consume_resubscribing
from store.boards import Board, board_index
from store.models import RankedPlayer, ScoreChange
from store.ports import ChangeFeed

logger = logging.getLogger(__name__)

T = TypeVar("T")

_CLOSE_WAIT_SECONDS = 2.0


class RankingReader(Protocol):
    """Reads that rebuild a period first when needed (the service layer implements them)."""

    async def player(self, board: str, period: str, username: str, /) -> RankedPlayer | None:
        """One player's standing in a period, or None without a score."""
        ...

    async def top(self, board: str, period: str, limit: int, /) -> list[RankedPlayer]:
        """The best `limit` players of a period, best first."""
        ...


@dataclass(frozen=True, slots=True)
class RankUpdate:
    """A change in one player's standing, as `rankChanged` yields it."""

    username: str
    board: str
    period: str
    score: int
    rank: int
    previous_rank: int | None


class _MailboxClosed(Exception):
    """The watcher was unregistered or live updates were closed: the iterator ends."""


class _Mailbox(Generic[T]):
    """A watcher's bounded queue. When full, everything queued is merged into the newest item."""

    __slots__ = ("_capacity", "_closed", "_items", "_merge", "_wakeup")

    def __init__(self, capacity: int, merge: Callable[[T, T], T]) -> None:
        self._capacity = max(1, capacity)
        self._merge = merge
        self._items: deque[T] = deque()
        self._wakeup = asyncio.Event()
        self._closed = False

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: T) -> None:
        """Queue an item; past capacity, collapse the backlog into the newest state."""
        if self._closed:
            return
        if len(self._items) >= self._capacity:
            merged = self._items.popleft()
            while self._items:
                merged = self._merge(merged, self._items.popleft())
            item = self._merge(merged, item)
        self._items.append(item)
        self._wakeup.set()

    def close(self) -> None:
        """End the consumer's iteration, dropping anything still queued."""
        self._closed = True
        self._items.clear()
        self._wakeup.set()

    async def get(self) -> T:
        """The oldest queued item; raises `_MailboxClosed` once closed."""
        while not self._items:
            if self._closed:
                raise _MailboxClosed
            self._wakeup.clear()
            await self._wakeup.wait()
        return self._items.popleft()


def _merge_rank_updates(older: RankUpdate, newer: RankUpdate) -> RankUpdate:
    # The client never saw `older`: the merged update's previous rank is the one before it,
    # i.e. what the client last saw, unless the period changed in between (then the newer
    # update's own previous rank, None for a first score in the new period, is the honest one).
    if older.period != newer.period:
        return newer
    return replace(newer, previous_rank=older.previous_rank)


def _keep_newest(_older: list[RankedPlayer], newer: list[RankedPlayer]) -> list[RankedPlayer]:
    return newer


class _PlayerWatcher:
    """One `rankChanged` subscription: its queue and the last update queued to it."""

    __slots__ = ("last", "mailbox", "ready")

    def __init__(self, capacity: int) -> None:
        self.mailbox: _Mailbox[RankUpdate] = _Mailbox(capacity, _merge_rank_updates)
        self.last: RankUpdate | None = None
        # False until the watcher's first snapshot is queued; updates before that would race it.
        self.ready = False


class _TopWatcher:
    """One `topPlayersChanged` subscription."""

    __slots__ = ("mailbox", "ready")

    def __init__(self, capacity: int) -> None:
        self.mailbox: _Mailbox[list[RankedPlayer]] = _Mailbox(capacity, _keep_newest)
        self.ready = False


@dataclass(eq=False, slots=True)
class _PlayerState:
    """What this instance knows of one watched player in the board's current period."""

    username: str
    score: int | None = None
    rank: int | None = None
    # Bumped by every event-driven change: a read that overlapped one is not applied,
    # because it may predate the event (the next resync checks again).
    changes: int = 0
    reads_started: int = 0
    reads_applied: int = 0
    watchers: set[_PlayerWatcher] = field(default_factory=set)


@dataclass(eq=False, slots=True)
class _TopGroup:
    """All watchers of one board's top `limit`: they share the list and its re-reads."""

    limit: int
    players: list[RankedPlayer] | None = None
    usernames: frozenset[str] = frozenset()
    reads_started: int = 0
    reads_applied: int = 0
    dirty: bool = False
    last_read: float = float("-inf")
    refresher: asyncio.Task[None] | None = None
    watchers: set[_TopWatcher] = field(default_factory=set)


@dataclass(eq=False, slots=True)
class _Feed:
    """One board's live state on this instance."""

    board: Board
    period: str
    # Bumped at each rollover, so that a read of the old period is never applied to the new one.
    epoch: int = 0
    players: dict[str, _PlayerState] = field(default_factory=dict)
    # (score, username) of every watched player with a score, ascending: an event finds the
    # watchers whose rank it moves by bisection instead of visiting every watcher.
    index: list[tuple[int, str]] = field(default_factory=list)
    tops: dict[int, _TopGroup] = field(default_factory=dict)
    resync_now: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


class _Subscription(Generic[T]):
    """The async iterator a watcher's consumer holds.

    Ending it in any way (exhaustion, `aclose`, cancellation of the awaiting task, or
    dropping it) unregisters the watcher at once. The registry holds the watcher, never
    this object, so that dropping it is noticed.
    """

    __slots__ = ("_attach", "_attached", "_detach", "_done", "_mailbox")

    def __init__(
        self,
        attach: Callable[[], Awaitable[None]],
        mailbox: _Mailbox[T],
        detach: Callable[[], None],
    ) -> None:
        self._attach = attach
        self._mailbox = mailbox
        self._detach = detach
        self._attached = False
        self._done = False

    def __aiter__(self) -> _Subscription[T]:
        return self

    async def __anext__(self) -> T:
        if self._done:
            raise StopAsyncIteration
        try:
            if not self._attached:
                self._attached = True
                await self._attach()
            return await self._mailbox.get()
        except _MailboxClosed:
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


class LiveRankings:
    """Per-instance fan-out of the store's change feeds to `rankChanged` and `topPlayersChanged`."""

    def __init__(
        self,
        ranking: ChangeFeed,
        reader: RankingReader,
        boards: Sequence[Board],
        *,
        resync_interval: float = 5.0,
        top_coalesce: float = 0.05,
        subscriber_queue: int = 64,
        clock: Callable[[], float] = time.time,
        restart_backoff: float = 0.5,
        resync_concurrency: int = 16,
    ) -> None:
        self._ranking = ranking
        self._reader = reader
        self._resync_interval = resync_interval
        self._top_coalesce = top_coalesce
        self._subscriber_queue = subscriber_queue
        self._clock = clock
        self._restart_backoff = restart_backoff
        self._resync_concurrency = max(1, resync_concurrency)
        self._boards = board_index(boards)
        self._feeds = {
            board.id: _Feed(board, board.period_at_timestamp(clock())) for board in boards
        }
        self._subscribers = 0
        self._started = False
        self._closed = False

    @property
    def subscriber_count(self) -> int:
        """Open subscriptions (player and top-list watchers) on this instance."""
        return self._subscribers

    async def start(self) -> None:
        """Subscribe to every board's change feed (once per board) and start the periodic resync."""
        if self._started or self._closed:
            return
        self._started = True
        for feed in self._feeds.values():
            self._start_feed(feed)
        # Let each consumer run up to its first wait, so an in-process feed is subscribed
        # before start() returns (a Redis subscription still completes asynchronously).
        await asyncio.sleep(0)

    async def close(self) -> None:
        """Stop the feeds and end every watcher's iteration."""
        self._closed = True
        tasks: list[asyncio.Task[None]] = []
        for feed in self._feeds.values():
            tasks.extend(feed.tasks)
            feed.tasks = []
            for group in feed.tops.values():
                if group.refresher is not None:
                    tasks.append(group.refresher)
                for top_watcher in group.watchers:
                    top_watcher.mailbox.close()
            for state in feed.players.values():
                for player_watcher in state.watchers:
                    player_watcher.mailbox.close()
        # Bounded: the write buffer still has to be drained after this.
        await cancel_and_wait(tasks, timeout=_CLOSE_WAIT_SECONDS, log=logger, what="live feeds")

    def watch_player(self, board: str, username: str) -> AsyncIterator[RankUpdate]:
        """The player's standing now (when the player has a score), then every change of it.

        The board must be configured (the caller validates arguments).
        """
        feed = self._feed(board)
        watcher = _PlayerWatcher(self._subscriber_queue)
        self._subscribers += 1
        return _Subscription(
            lambda: self._attach_player(feed, username, watcher),
            watcher.mailbox,
            lambda: self._detach_player(feed, username, watcher),
        )

    def watch_top(self, board: str, limit: int) -> AsyncIterator[list[RankedPlayer]]:
        """The board's top `limit` now, then the new list each time it changes.

        The lists yielded are shared by the watchers of the same limit: do not mutate them.
        """
        feed = self._feed(board)
        watcher = _TopWatcher(self._subscriber_queue)
        self._subscribers += 1
        return _Subscription(
            lambda: self._attach_top(feed, limit, watcher),
            watcher.mailbox,
            lambda: self._detach_top(feed, limit, watcher),
        )

    def _feed(self, board: str) -> _Feed:
        feed = self._feeds.get(board)
        if feed is None:
            # A board created at run time: its feed starts with its first watcher.
            known = self._boards.get(board)
            if known is None:
                raise ValueError(f"unknown board {board!r}")
            feed = self._feeds[board] = _Feed(known, known.period_at_timestamp(self._clock()))
            if self._started and not self._closed:
                self._start_feed(feed)
        return feed

    def _start_feed(self, feed: _Feed) -> None:
        board = feed.board.id
        feed.tasks = [
            asyncio.create_task(self._consume(feed), name=f"live feed {board}"),
            asyncio.create_task(self._resync_loop(feed), name=f"live resync {board}"),
        ]

    # Registration

    async def _attach_player(self, feed: _Feed, username: str, watcher: _PlayerWatcher) -> None:
        if self._closed:
            watcher.mailbox.close()
            return
        state = feed.players.get(username)
        if state is None:
            state = feed.players[username] = _PlayerState(username)
        state.watchers.add(watcher)
        await self._read_player(feed, state)
        watcher.ready = True
        self._publish_player(feed, state, (watcher,))

    def _detach_player(self, feed: _Feed, username: str, watcher: _PlayerWatcher) -> None:
        self._subscribers -= 1
        watcher.mailbox.close()
        state = feed.players.get(username)
        if state is None:
            return
        state.watchers.discard(watcher)
        if not state.watchers:
            del feed.players[username]
            self._unindex(feed, state)

    async def _attach_top(self, feed: _Feed, limit: int, watcher: _TopWatcher) -> None:
        if self._closed:
            watcher.mailbox.close()
            return
        group = feed.tops.get(limit)
        if group is None:
            group = feed.tops[limit] = _TopGroup(limit)
        group.watchers.add(watcher)
        await self._read_top(feed, group)
        watcher.ready = True
        if group.players is not None:
            watcher.mailbox.put(group.players)

    def _detach_top(self, feed: _Feed, limit: int, watcher: _TopWatcher) -> None:
        self._subscribers -= 1
        watcher.mailbox.close()
        group = feed.tops.get(limit)
        if group is None:
            return
        group.watchers.discard(watcher)
        if not group.watchers:
            del feed.tops[limit]
            if group.refresher is not None:
                group.refresher.cancel()

    # Periods

    def _roll_to_current_period(self, feed: _Feed) -> str:
        """The board's current period; when a new one began, the feed rolls over to it first."""
        period = feed.board.period_at_timestamp(self._clock())
        if period != feed.period:
            self._roll_over(feed, period)
        return period

    def _roll_over(self, feed: _Feed, period: str) -> None:
        logger.info("board %s: period %s began (was %s)", feed.board.id, period, feed.period)
        feed.period = period
        feed.epoch += 1
        feed.index.clear()
        # Nobody has a score in a new period until they score (or a resync finds one
        # that another instance saw first).
        for state in feed.players.values():
            state.score = None
            state.rank = None
            state.changes += 1
        for group in tuple(feed.tops.values()):
            self._top_dirty(feed, group)
        feed.resync_now.set()

    # Events

    async def _consume(self, feed: _Feed) -> None:
        """Consume the board's change feed for ever, resubscribing after a failure."""
        await consume_resubscribing(
            lambda: self._ranking.changes(feed.board.id),
            lambda change: self._handle(feed, change),
            running=lambda: not self._closed,
            log=logger,
            what=f"board {feed.board.id}: the change feed",
            restart_backoff=self._restart_backoff,
            failure_level=logging.ERROR,
            # Whatever was published while unsubscribed is lost: re-read everything now.
            resubscribing=feed.resync_now.set,
        )

    def _handle(self, feed: _Feed, change: ScoreChange) -> None:
        # A bug on one event must not cost the board its subscription.
        try:
            self._on_change(feed, change)
        except Exception:
            logger.exception("board %s: could not process %r", feed.board.id, change)

    def _on_change(self, feed: _Feed, change: ScoreChange) -> None:
        if not feed.players and not feed.tops:
            # Unwatched, an event changes nothing here: no watched player (whom the index
            # holds too) and no top list. A rollover it would reveal is found by the next
            # attach or resync, which read the period first.
            return
        if change.period != self._roll_to_current_period(feed):
            return
        own = feed.players.get(change.username)
        if own is not None:
            own.changes += 1
            self._set_standing(feed, own, change.score, change.rank)
            self._publish_player(
                feed, own, own.watchers, from_event=True, event_previous_rank=change.previous_rank
            )
        self._move_crossed(feed, change)
        for group in tuple(feed.tops.values()):
            if self._may_change_top(group, change):
                self._top_dirty(feed, group)

    def _move_crossed(self, feed: _Feed, change: ScoreChange) -> None:
        """Move by one the rank of every watched player whose score the mover crossed.

        The mover is above a score s iff its score is strictly greater (competition ranks),
        so moving up from p to n passes exactly the scores in [p, n) and falling from p to
        n drops below exactly those in [n, p); a new player (p None) passes those below n.
        """
        before, after = change.previous_score, change.score
        if before == after:
            return
        if before is None or before < after:
            low, high, step = before, after, 1
        else:
            low, high, step = after, before, -1
        # (score, "") sorts before every (score, username): usernames are never empty.
        start = 0 if low is None else bisect.bisect_left(feed.index, (low, ""))
        end = bisect.bisect_left(feed.index, (high, ""), lo=start)
        for _, username in feed.index[start:end]:
            state = feed.players.get(username)
            if username == change.username or state is None or state.rank is None:
                continue
            state.changes += 1
            state.rank = max(1, state.rank + step)
            self._publish_player(feed, state, state.watchers)

    @staticmethod
    def _may_change_top(group: _TopGroup, change: ScoreChange) -> bool:
        players = group.players
        return (
            players is None
            or len(players) < group.limit
            or change.username in group.usernames
            # Equal to the lowest shown can still enter: ties are ordered by username.
            or change.score >= players[-1].score
        )

    # Player state

    def _set_standing(
        self, feed: _Feed, state: _PlayerState, score: int | None, rank: int | None
    ) -> None:
        if state.score != score:
            self._unindex(feed, state)
            state.score = score
            if score is not None:
                bisect.insort(feed.index, (score, state.username))
        state.rank = rank

    @staticmethod
    def _unindex(feed: _Feed, state: _PlayerState) -> None:
        if state.score is None:
            return
        key = (state.score, state.username)
        position = bisect.bisect_left(feed.index, key)
        if position < len(feed.index) and feed.index[position] == key:
            del feed.index[position]

    def _publish_player(
        self,
        feed: _Feed,
        state: _PlayerState,
        watchers: Iterable[_PlayerWatcher],
        *,
        from_event: bool = False,
        event_previous_rank: int | None = None,
    ) -> None:
        """Queue the state to every ready watcher that has not been sent it yet."""
        score, rank = state.score, state.rank
        if score is None or rank is None:
            return
        # A copy: a dropped subscription unregisters from its finaliser, possibly mid-loop.
        for watcher in tuple(watchers):
            if not watcher.ready:
                continue
            last = watcher.last
            seen_rank: int | None = None
            if last is not None and last.period == feed.period:
                if last.score == score and last.rank == rank:
                    continue
                seen_rank = last.rank
            update = RankUpdate(
                username=state.username,
                board=feed.board.id,
                period=feed.period,
                score=score,
                rank=rank,
                previous_rank=event_previous_rank if from_event else seen_rank,
            )
            watcher.last = update
            watcher.mailbox.put(update)

    async def _read_player(self, feed: _Feed, state: _PlayerState) -> None:
        """Re-read a watched player's standing and correct (and publish) what differs."""
        while True:
            period = self._roll_to_current_period(feed)
            epoch, changes = feed.epoch, state.changes
            state.reads_started += 1
            token = state.reads_started
            standing = await self._reader.player(feed.board.id, period, state.username)
            if feed.epoch == epoch:
                break
        if (
            feed.players.get(state.username) is not state
            or state.changes != changes
            or token < state.reads_applied
        ):
            return
        state.reads_applied = token
        if standing is None:
            self._set_standing(feed, state, None, None)
        else:
            self._set_standing(feed, state, standing.score, standing.rank)
        self._publish_player(feed, state, state.watchers)

    # Top lists

    def _top_dirty(self, feed: _Feed, group: _TopGroup) -> None:
        group.dirty = True
        if self._closed:
            return
        if group.refresher is None or group.refresher.done():
            group.refresher = asyncio.create_task(
                self._refresh_top(feed, group), name=f"live top {feed.board.id}/{group.limit}"
            )

    async def _refresh_top(self, feed: _Feed, group: _TopGroup) -> None:
        """Re-read a top list while it is dirty, at most once per `top_coalesce` seconds."""
        loop = asyncio.get_running_loop()
        while group.dirty and feed.tops.get(group.limit) is group:
            wait = group.last_read + self._top_coalesce - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            group.dirty = False
            group.last_read = loop.time()
            try:
                await self._read_top(feed, group)
            except Exception:
                # The next event or resync marks it dirty again.
                logger.warning(
                    "board %s: reading the top %d failed", feed.board.id, group.limit, exc_info=True
                )

    async def _read_top(self, feed: _Feed, group: _TopGroup) -> None:
        """Read a top list; queue it to the ready watchers when it changed."""
        while True:
            period = self._roll_to_current_period(feed)
            epoch = feed.epoch
            group.reads_started += 1
            token = group.reads_started
            players = await self._reader.top(feed.board.id, period, group.limit)
            if feed.epoch == epoch:
                break
        # A read that started before one already applied is older: drop it.
        if feed.tops.get(group.limit) is not group or token < group.reads_applied:
            return
        group.reads_applied = token
        if players == group.players:
            return
        group.players = players
        group.usernames = frozenset(player.username for player in players)
        for watcher in tuple(group.watchers):
            if watcher.ready:
                watcher.mailbox.put(players)

    # Resync

    async def _resync_loop(self, feed: _Feed) -> None:
        """Every `resync_interval` (at once after a rollover or a lost feed), re-read everything."""
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._resync_interval):
                    await feed.resync_now.wait()
            feed.resync_now.clear()
            try:
                await self._resync(feed)
            except Exception:
                logger.exception("board %s: resync failed", feed.board.id)

    async def _resync(self, feed: _Feed) -> None:
        self._roll_to_current_period(feed)
        for group in tuple(feed.tops.values()):
            self._top_dirty(feed, group)
        states = iter(tuple(feed.players.values()))
        failures: list[Exception] = []

        # A few workers share one iterator: at most `resync_concurrency` reads in flight,
        # so thousands of watched players do not hit the store all at once.
        async def worker() -> None:
            for state in states:
                if feed.players.get(state.username) is not state:
                    continue
                try:
                    await self._read_player(feed, state)
                except Exception as error:
                    failures.append(error)

        await asyncio.gather(
            *(worker() for _ in range(min(self._resync_concurrency, len(feed.players))))
        )
        if failures:
            logger.warning(
                "board %s: %d watched players could not be re-read (%s); retrying in %.1fs",
                feed.board.id,
                len(failures),
                failures[0],
                self._resync_interval,
            )
