"""Live updates of this instance's subscriptions: one store feed per board, fanned out to watchers.

Each board has exactly one consumer of `changes(board)` per instance, whatever the number
of subscriptions. Every event is turned into watcher updates on the event loop without a
store round trip per watcher: a watched player's rank moves by one when another player
crosses its score, and top lists are re-read (coalesced) only when an event can change them.

Pub/sub may drop messages, so every `resync_interval` the watched players and top lists
are re-read and corrected. Each watcher has a bounded queue: a slow consumer gets the
newest state, never an unbounded backlog.

This module holds the tasks (feed consumers, top-list refreshers, resync) and the
registration; the state they keep and its event arithmetic are resolvers/live_state.py,
a watcher's queue and iterator resolvers/mailbox.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Protocol

from resolvers.live_state import Feed, PlayerState, PlayerWatcher, RankUpdate, TopGroup, TopWatcher
from resolvers.mailbox import Subscription
from store.aio import cancel_and_wait, consume_resubscribing
from store.boards import Board, board_index
from store.models import RankedPlayer, ScoreChange
from store.ports import ChangeFeed

__all__ = ["LiveRankings", "RankUpdate", "RankingReader"]

logger = logging.getLogger(__name__)

_CLOSE_WAIT_SECONDS = 2.0


class RankingReader(Protocol):
    """Reads that rebuild a period first when needed (the service layer implements them)."""

    async def player(self, board: str, period: str, username: str, /) -> RankedPlayer | None:
        """One player's standing in a period, or None without a score."""
        ...

    async def top(self, board: str, period: str, limit: int, /) -> list[RankedPlayer]:
        """The best `limit` players of a period, best first."""
        ...


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
            board.id: Feed(board, board.period_at_timestamp(clock())) for board in boards
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
        watcher = PlayerWatcher(self._subscriber_queue)
        self._subscribers += 1
        return Subscription(
            lambda: self._attach_player(feed, username, watcher),
            watcher.mailbox,
            lambda: self._detach_player(feed, username, watcher),
        )

    def watch_top(self, board: str, limit: int) -> AsyncIterator[list[RankedPlayer]]:
        """The board's top `limit` now, then the new list each time it changes.

        The lists yielded are shared by the watchers of the same limit: do not mutate them.
        """
        feed = self._feed(board)
        watcher = TopWatcher(self._subscriber_queue)
        self._subscribers += 1
        return Subscription(
            lambda: self._attach_top(feed, limit, watcher),
            watcher.mailbox,
            lambda: self._detach_top(feed, limit, watcher),
        )

    def _feed(self, board: str) -> Feed:
        feed = self._feeds.get(board)
        if feed is None:
            # A board created at run time: its feed starts with its first watcher.
            known = self._boards.get(board)
            if known is None:
                raise ValueError(f"unknown board {board!r}")
            feed = self._feeds[board] = Feed(known, known.period_at_timestamp(self._clock()))
            if self._started and not self._closed:
                self._start_feed(feed)
        return feed

    def _start_feed(self, feed: Feed) -> None:
        board = feed.board.id
        feed.tasks = [
            asyncio.create_task(self._consume(feed), name=f"live feed {board}"),
            asyncio.create_task(self._resync_loop(feed), name=f"live resync {board}"),
        ]

    # Registration

    async def _attach_player(self, feed: Feed, username: str, watcher: PlayerWatcher) -> None:
        if self._closed:
            watcher.mailbox.close()
            return
        state = feed.players.get(username)
        if state is None:
            state = feed.players[username] = PlayerState(username)
        state.watchers.add(watcher)
        await self._hold(feed)
        await self._read_player(feed, state)
        watcher.ready = True
        self._publish_player(feed, state, (watcher,))

    def _detach_player(self, feed: Feed, username: str, watcher: PlayerWatcher) -> None:
        self._subscribers -= 1
        watcher.mailbox.close()
        state = feed.players.get(username)
        if state is None:
            return
        state.watchers.discard(watcher)
        if not state.watchers:
            del feed.players[username]
            feed.unindex(state)
        self._release_if_unwatched(feed)

    async def _attach_top(self, feed: Feed, limit: int, watcher: TopWatcher) -> None:
        if self._closed:
            watcher.mailbox.close()
            return
        group = feed.tops.get(limit)
        if group is None:
            group = feed.tops[limit] = TopGroup(limit)
        group.watchers.add(watcher)
        await self._hold(feed)
        await self._read_top(feed, group)
        watcher.ready = True
        if group.players is not None:
            watcher.mailbox.put(group.players)

    def _detach_top(self, feed: Feed, limit: int, watcher: TopWatcher) -> None:
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
        self._release_if_unwatched(feed)

    async def _hold(self, feed: Feed) -> None:
        """Hold the board before a new watcher's first read (once per feed): every write
        publishes its changes from then on, and what published nothing before is in the
        read (store/redis/watchers.py)."""
        if feed.held:
            return
        await self._ranking.watch(feed.board.id)
        if feed.held or not (feed.players or feed.tops):  # held meanwhile, or nobody left
            self._ranking.unwatch(feed.board.id)
        else:
            feed.held = True

    def _release_if_unwatched(self, feed: Feed) -> None:
        if feed.held and not feed.players and not feed.tops:
            feed.held = False
            self._ranking.unwatch(feed.board.id)

    # Periods

    def _roll_to_current_period(self, feed: Feed) -> str:
        """The board's current period; when a new one began, the feed rolls over to it first."""
        period = feed.board.period_at_timestamp(self._clock())
        if period != feed.period:
            logger.info("board %s: period %s began (was %s)", feed.board.id, period, feed.period)
            feed.begin_period(period)
            for group in tuple(feed.tops.values()):
                self._top_dirty(feed, group)
            feed.resync_now.set()
        return period

    # Events

    async def _consume(self, feed: Feed) -> None:
        """Consume the board's change feed for ever, resubscribing after a failure."""
        await consume_resubscribing(
            # Subscribed for ever; the board is held only while it has watchers (`_hold`).
            lambda: self._ranking.changes(feed.board.id, watch=False),
            lambda change: self._handle(feed, change),
            running=lambda: not self._closed,
            log=logger,
            what=f"board {feed.board.id}: the change feed",
            restart_backoff=self._restart_backoff,
            failure_level=logging.ERROR,
            # Whatever was published while unsubscribed is lost: re-read everything now.
            resubscribing=feed.resync_now.set,
        )

    def _handle(self, feed: Feed, change: ScoreChange) -> None:
        # A bug on one event must not cost the board its subscription.
        try:
            self._on_change(feed, change)
        except Exception:
            logger.exception("board %s: could not process %r", feed.board.id, change)

    def _on_change(self, feed: Feed, change: ScoreChange) -> None:
        if not feed.players and not feed.tops:
            # Unwatched, an event changes nothing here: no watched player (whom the index
            # holds too) and no top list. A rollover it would reveal is found by the next
            # attach or resync, which read the period first.
            return
        if change.period != self._roll_to_current_period(feed):
            return
        own = feed.players.get(change.username)
        if own is not None and change.removed:
            # No standing to show (the contract's RankChange has a score and a rank): the
            # watcher hears again when the player scores afresh.
            own.changes += 1
            feed.set_standing(own, None, None)
        elif own is not None:
            own.changes += 1
            feed.set_standing(own, change.score, change.rank)
            self._publish_player(
                feed, own, own.watchers, from_event=True, event_previous_rank=change.previous_rank
            )
        for state in feed.crossed(change):
            self._publish_player(feed, state, state.watchers)
        for group in tuple(feed.tops.values()):
            if group.may_change(change, feed.board.sort_order):
                self._top_dirty(feed, group)

    def _publish_player(
        self,
        feed: Feed,
        state: PlayerState,
        watchers: Iterable[PlayerWatcher],
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

    async def _read_player(self, feed: Feed, state: PlayerState) -> None:
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
            feed.set_standing(state, None, None)
        else:
            feed.set_standing(state, standing.score, standing.rank)
        self._publish_player(feed, state, state.watchers)

    # Top lists

    def _top_dirty(self, feed: Feed, group: TopGroup) -> None:
        group.dirty = True
        if self._closed:
            return
        if group.refresher is None or group.refresher.done():
            group.refresher = asyncio.create_task(
                self._refresh_top(feed, group), name=f"live top {feed.board.id}/{group.limit}"
            )

    async def _refresh_top(self, feed: Feed, group: TopGroup) -> None:
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

    async def _read_top(self, feed: Feed, group: TopGroup) -> None:
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

    async def _resync_loop(self, feed: Feed) -> None:
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

    async def _resync(self, feed: Feed) -> None:
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
