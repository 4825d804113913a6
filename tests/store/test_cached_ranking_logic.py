"""The top() cache's logic, over the embedded store with its reads counted, held or failed."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable

import pytest

from store.boards import Board, ResetPeriod
from store.cached_ranking import TopCache
from store.embedded_ranking import EmbeddedRankingStore
from store.errors import RankingNotLoaded, ScoreOutOfRange, StoreUnavailable
from store.models import MAX_EXACT_SCORE, RankedPlayer, ScoreChange, ScoreIncrement
from tests.support.manual_clock import ManualClock

pytestmark = pytest.mark.unit

BOARDS = (Board("global", ResetPeriod.MONTHLY), Board("daily", ResetPeriod.DAILY))
GLOBAL = "global"
PERIOD = "2026-05"
OTHER_PERIOD = "2026-04"
STALENESS = 0.125
"""A binary fraction: the bound is checked to the exact tick."""
TICK = 1 / 1024
TIMEOUT = 5.0
TEN_PLAYERS = {name: 100 - 10 * index for index, name in enumerate("abcdefghij")}
"""Ranks 1..10: a 100, b 90, ..., j 10."""


class ScriptedStore(EmbeddedRankingStore):
    """The embedded store, with top() reads counted and optionally held or failed, and a
    change feed that reports when its consumer has handled each change."""

    def __init__(self) -> None:
        super().__init__(boards=BOARDS)
        self.top_reads = 0
        self.reading = asyncio.Event()
        """Set when a top() read began."""
        self.hold: asyncio.Event | None = None
        """When given, top() reads the ranking, then waits for it before answering."""
        self.failure: Exception | None = None
        self.broken_feeds = 0
        """This many next change feeds fail at once."""
        self.ending_feeds = 0
        """This many next change feeds end without a change."""
        self.feeds_opened = 0
        self.subscribed = asyncio.Event()
        self.consumed = asyncio.Event()
        """Set when a feed's consumer came back for the next change: it handled the last."""
        self.feed_ended = asyncio.Event()
        self.closed = False
        self.holds = 0
        """Holds on the board (`watch` less `unwatch`): writes publish only while held."""
        self.reads_unheld = 0
        """top() reads made while the board was not held."""

    async def top(self, board: str, period: str, limit: int, offset: int) -> list[RankedPlayer]:
        self.top_reads += 1
        self.reads_unheld += not self.holds
        self.reading.set()
        if self.failure is not None:
            raise self.failure
        players = await super().top(board, period, limit, offset)
        if self.hold is not None:
            await self.hold.wait()
        return players

    def changes(self, board: str, *, watch: bool = True) -> AsyncIterator[ScoreChange]:
        return self._observed_changes(board)

    async def watch(self, board: str) -> None:
        self.holds += 1

    def unwatch(self, board: str) -> None:
        assert self.holds > 0
        self.holds -= 1

    async def _observed_changes(self, board: str) -> AsyncIterator[ScoreChange]:
        self.feeds_opened += 1
        if self.broken_feeds:
            self.broken_feeds -= 1
            raise StoreUnavailable("the subscription was lost")
        if self.ending_feeds:
            self.ending_feeds -= 1
            self.feed_ended.set()
            return
        feed = super().changes(board)
        try:
            self.subscribed.set()
            async for change in feed:
                yield change
                self.consumed.set()
        finally:
            await feed.aclose()  # type: ignore[attr-defined]  # an async generator

    async def close(self) -> None:
        self.closed = True


@pytest.fixture
def clock() -> ManualClock:
    """The cache's clock."""
    return ManualClock()


@pytest.fixture
async def inner() -> ScriptedStore:
    """The wrapped store, with the test period holding ten players."""
    store = ScriptedStore()
    await store.load(GLOBAL, PERIOD, TEN_PLAYERS.items(), [])
    await store.load(GLOBAL, OTHER_PERIOD, TEN_PLAYERS.items(), [])
    return store


@pytest.fixture
async def cached(inner: ScriptedStore, clock: ManualClock) -> AsyncIterator[TopCache]:
    """The cache over it, with a 100 ms bound on the fake clock."""
    store = TopCache(inner, STALENESS, clock=clock, restart_backoff=0.01)
    yield store
    await store.close()


def inc(username: str, delta: int, period: str = PERIOD) -> ScoreIncrement:
    """An increment with a generated event id."""
    return ScoreIncrement(
        board=GLOBAL,
        period=period,
        username=username,
        delta=delta,
        event_id=f"~{uuid.uuid4().hex}",
        client_event_id=False,
    )


def names(players: list[RankedPlayer]) -> list[str]:
    """Usernames in order."""
    return [player.username for player in players]


async def until_true(condition: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    """Poll a condition until it holds (fails the test after `timeout` real seconds)."""
    async with asyncio.timeout(timeout):
        while True:
            if condition():
                return
            await asyncio.sleep(0.01)


async def changed_elsewhere(inner: ScriptedStore, *increments: ScoreIncrement) -> None:
    """Write behind the cache's back (another instance) and wait until its feed handled it."""
    inner.consumed.clear()
    await inner.increment(list(increments))
    await asyncio.wait_for(inner.consumed.wait(), TIMEOUT)


# Serving within the bound


async def test_a_snapshot_is_served_until_the_bound(
    cached: TopCache, inner: ScriptedStore, clock: ManualClock
) -> None:
    first = await cached.top(GLOBAL, PERIOD, 3, 0)
    assert names(first) == ["a", "b", "c"]
    clock.advance(STALENESS - TICK)
    assert await cached.top(GLOBAL, PERIOD, 3, 0) == first
    assert (inner.top_reads, cached.hits, cached.misses, cached.inner_reads) == (1, 1, 1, 1)
    clock.advance(TICK)  # exactly the bound: too old
    assert await cached.top(GLOBAL, PERIOD, 3, 0) == first
    assert (inner.top_reads, cached.hits, cached.misses) == (2, 1, 2)


async def test_what_is_served_is_behind_by_less_than_the_bound(
    cached: TopCache, inner: ScriptedStore, clock: ManualClock
) -> None:
    await cached.top(GLOBAL, PERIOD, 3, 0)
    # Behind the cache's back, with no change event: only the bound can show it.
    await inner.load(GLOBAL, PERIOD, [("zed", 1000)], [])
    assert names(await cached.top(GLOBAL, PERIOD, 3, 0)) == ["a", "b", "c"]
    clock.advance(STALENESS)
    assert names(await cached.top(GLOBAL, PERIOD, 3, 0)) == ["zed"]


async def test_age_counts_from_the_start_of_the_read(
    cached: TopCache, inner: ScriptedStore, clock: ManualClock
) -> None:
    inner.hold = asyncio.Event()
    reading = asyncio.create_task(cached.top(GLOBAL, PERIOD, 3, 0))
    await inner.reading.wait()
    clock.advance(STALENESS * 0.6)  # a slow read
    inner.hold.set()
    inner.hold = None
    await reading
    clock.advance(STALENESS * 0.5)  # 0.5 since the answer, 1.1 since the read began
    await cached.top(GLOBAL, PERIOD, 3, 0)
    assert inner.top_reads == 2


async def test_keys_are_board_period_limit_and_offset(
    cached: TopCache, inner: ScriptedStore
) -> None:
    assert names(await cached.top(GLOBAL, PERIOD, 2, 0)) == ["a", "b"]
    assert names(await cached.top(GLOBAL, PERIOD, 2, 2)) == ["c", "d"]
    assert names(await cached.top(GLOBAL, PERIOD, 3, 0)) == ["a", "b", "c"]
    assert names(await cached.top(GLOBAL, OTHER_PERIOD, 2, 0)) == ["a", "b"]
    assert inner.top_reads == 4
    await cached.top(GLOBAL, PERIOD, 2, 2)
    assert inner.top_reads == 4


async def test_callers_get_their_own_list(cached: TopCache) -> None:
    mine = await cached.top(GLOBAL, PERIOD, 3, 0)
    mine.clear()
    assert names(await cached.top(GLOBAL, PERIOD, 3, 0)) == ["a", "b", "c"]


# Single flight


async def test_concurrent_misses_share_one_read(cached: TopCache, inner: ScriptedStore) -> None:
    inner.hold = asyncio.Event()
    readers = [asyncio.create_task(cached.top(GLOBAL, PERIOD, 3, 0)) for _ in range(50)]
    await inner.reading.wait()
    await asyncio.sleep(0)  # let every reader reach the shared read
    inner.hold.set()
    results = await asyncio.gather(*readers)
    assert all(names(result) == ["a", "b", "c"] for result in results)
    assert (inner.top_reads, cached.inner_reads, cached.misses, cached.hits) == (1, 1, 50, 0)


async def test_a_cancelled_reader_does_not_cancel_the_shared_read(
    cached: TopCache, inner: ScriptedStore
) -> None:
    inner.hold = asyncio.Event()
    first = asyncio.create_task(cached.top(GLOBAL, PERIOD, 3, 0))
    await inner.reading.wait()
    second = asyncio.create_task(cached.top(GLOBAL, PERIOD, 3, 0))
    await asyncio.sleep(0)  # the second joins the read
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    inner.hold.set()
    assert names(await second) == ["a", "b", "c"]
    await cached.top(GLOBAL, PERIOD, 3, 0)
    assert inner.top_reads == 1  # and it was cached


async def test_a_read_older_than_the_bound_is_not_joined(
    cached: TopCache, inner: ScriptedStore, clock: ManualClock
) -> None:
    hold = inner.hold = asyncio.Event()
    slow = asyncio.create_task(cached.top(GLOBAL, PERIOD, 3, 0))
    await inner.reading.wait()
    inner.hold = None
    clock.advance(STALENESS)
    await inner.load(GLOBAL, PERIOD, [("zed", 1000)], [])  # behind the cache's back
    fresh = await asyncio.wait_for(cached.top(GLOBAL, PERIOD, 3, 0), TIMEOUT)
    assert names(fresh) == ["zed"]
    assert inner.top_reads == 2
    hold.set()
    assert names(await slow) == ["a", "b", "c"]
    # The replaced read landed last: its older answer did not replace the newer snapshot.
    assert names(await cached.top(GLOBAL, PERIOD, 3, 0)) == ["zed"]
    assert inner.top_reads == 2


# Errors


async def test_a_failed_read_reaches_every_waiter_and_is_not_cached(
    cached: TopCache, inner: ScriptedStore
) -> None:
    inner.failure = StoreUnavailable("redis is down")
    readers = [asyncio.create_task(cached.top(GLOBAL, PERIOD, 3, 0)) for _ in range(5)]
    results = await asyncio.gather(*readers, return_exceptions=True)
    assert all(isinstance(result, StoreUnavailable) for result in results)
    assert inner.top_reads == 1
    inner.failure = None
    assert names(await cached.top(GLOBAL, PERIOD, 3, 0)) == ["a", "b", "c"]
    assert inner.top_reads == 2


async def test_not_loaded_propagates_every_time(cached: TopCache, inner: ScriptedStore) -> None:
    for _ in range(2):
        with pytest.raises(RankingNotLoaded) as raised:
            await cached.top(GLOBAL, "2026-01", 3, 0)
        assert (raised.value.board, raised.value.period) == (GLOBAL, "2026-01")
    assert inner.top_reads == 2
    await cached.load(GLOBAL, "2026-01", [("ann", 1)], [])
    assert names(await cached.top(GLOBAL, "2026-01", 3, 0)) == ["ann"]


async def test_negative_arguments_are_refused_by_the_inner_store(
    cached: TopCache,
) -> None:
    with pytest.raises(ValueError, match="negative"):
        await cached.top(GLOBAL, PERIOD, -1, 0)
    with pytest.raises(ValueError, match="negative"):
        await cached.top(GLOBAL, PERIOD, 1, -1)


# Own writes


async def test_an_own_write_that_reaches_the_window_is_read_back_at_once(
    cached: TopCache,
) -> None:
    await cached.top(GLOBAL, PERIOD, 3, 0)
    [outcome] = await cached.increment([inc("j", 85)])  # 10 -> 95: rank 2
    assert outcome.rank == 2
    assert names(await cached.top(GLOBAL, PERIOD, 3, 0)) == ["a", "j", "b"]
    # At least once: the write's own change event may drop the window again.
    assert cached.invalidations >= 1


async def test_an_own_write_leaving_the_window_drops_it(
    cached: TopCache,
) -> None:
    await cached.top(GLOBAL, PERIOD, 3, 0)
    await cached.increment([inc("a", -95)])  # rank 1 -> 10
    assert names(await cached.top(GLOBAL, PERIOD, 3, 0)) == ["b", "c", "d"]


async def test_an_own_write_below_the_window_keeps_it(
    cached: TopCache, inner: ScriptedStore
) -> None:
    await cached.top(GLOBAL, PERIOD, 3, 0)
    await cached.top(GLOBAL, PERIOD, 3, 3)  # ranks 4..6
    [outcome] = await cached.increment([inc("i", 25)])  # 20 -> 45: rank 9 -> 7
    assert (outcome.previous_rank, outcome.rank) == (9, 7)
    await cached.increment([inc("newcomer", 1)])  # rank 11
    await cached.top(GLOBAL, PERIOD, 3, 0)
    await cached.top(GLOBAL, PERIOD, 3, 3)
    assert inner.top_reads == 2
    assert cached.invalidations == 0


async def test_an_own_write_in_another_period_keeps_the_window(
    cached: TopCache, inner: ScriptedStore
) -> None:
    await cached.top(GLOBAL, PERIOD, 3, 0)
    await cached.increment([inc("j", 1000, period=OTHER_PERIOD)])
    await cached.top(GLOBAL, PERIOD, 3, 0)
    assert inner.top_reads == 1


async def test_a_failed_write_drops_its_periods(cached: TopCache, inner: ScriptedStore) -> None:
    await cached.top(GLOBAL, PERIOD, 3, 3)
    with pytest.raises(ScoreOutOfRange):
        await cached.increment([inc("j", MAX_EXACT_SCORE)])
    await cached.top(GLOBAL, PERIOD, 3, 3)
    assert inner.top_reads == 2


async def test_a_duplicate_write_keeps_the_window(cached: TopCache, inner: ScriptedStore) -> None:
    await cached.top(GLOBAL, PERIOD, 3, 0)
    once = ScoreIncrement(
        board=GLOBAL,
        period=PERIOD,
        username="j",
        delta=1000,
        event_id="client-event-1",
        client_event_id=True,
    )
    await inner.increment([once])  # applied elsewhere earlier
    await cached.increment([once])  # not applied again: nothing changed
    await cached.top(GLOBAL, PERIOD, 3, 0)
    assert inner.top_reads == 1


async def test_load_drops_every_window_of_the_period(
    cached: TopCache, inner: ScriptedStore
) -> None:
    await cached.top(GLOBAL, PERIOD, 3, 0)
    await cached.top(GLOBAL, PERIOD, 3, 100)
    await cached.top(GLOBAL, OTHER_PERIOD, 3, 0)
    await cached.load(GLOBAL, PERIOD, [("zed", 1)], [])
    assert names(await cached.top(GLOBAL, PERIOD, 3, 0)) == ["zed"]
    assert await cached.top(GLOBAL, PERIOD, 3, 100) == []
    assert names(await cached.top(GLOBAL, OTHER_PERIOD, 3, 0)) == ["a", "b", "c"]
    assert inner.top_reads == 5


async def test_a_write_during_a_read_keeps_that_read_out_of_the_cache(
    cached: TopCache, inner: ScriptedStore
) -> None:
    hold = inner.hold = asyncio.Event()
    reading = asyncio.create_task(cached.top(GLOBAL, PERIOD, 3, 0))
    await inner.reading.wait()  # it has read the ranking and not answered yet
    inner.hold = None
    await cached.increment([inc("j", 1000)])
    hold.set()
    # The read that began before the write still answers its own waiters...
    assert names(await reading) == ["a", "b", "c"]
    # ...but was not cached: a reader after the write gets the write.
    assert names(await cached.top(GLOBAL, PERIOD, 3, 0)) == ["j", "a", "b"]
    assert inner.top_reads == 2


# Change events from other instances


async def test_a_change_reaching_the_window_drops_it(
    cached: TopCache, inner: ScriptedStore
) -> None:
    await cached.top(GLOBAL, PERIOD, 3, 0)
    await changed_elsewhere(inner, inc("j", 85))  # to rank 2
    assert names(await cached.top(GLOBAL, PERIOD, 3, 0)) == ["a", "j", "b"]
    assert cached.invalidations == 1


@pytest.mark.parametrize(
    ("increment", "dropped"),
    [
        (inc("d", 1), True),  # rank 4 -> 4: the window shows its score
        (inc("a", -95), True),  # 1 -> 10: everybody in the window moves up
        (inc("newcomer", 55), True),  # a first score at rank 6
        (inc("g", 10), True),  # 7 -> 6 (ties f; listed after it: conservative)
        (inc("b", 100), True),  # 2 -> 1: above the window (conservative)
        (inc("g", 5), False),  # 7 -> 7
        (inc("i", 15), False),  # 9 -> 8
        (inc("newcomer", 1), False),  # a first score at rank 11
        (inc("a", 1, period=OTHER_PERIOD), False),
    ],
)
async def test_which_changes_reach_a_window(
    cached: TopCache,
    inner: ScriptedStore,
    increment: ScoreIncrement,
    dropped: bool,
) -> None:
    await cached.top(GLOBAL, PERIOD, 3, 3)  # ranks 4..6: d, e, f
    await changed_elsewhere(inner, increment)
    await cached.top(GLOBAL, PERIOD, 3, 3)
    assert inner.top_reads == (2 if dropped else 1)


async def test_the_relayed_feed_drops_the_window_before_it_delivers(
    inner: ScriptedStore, clock: ManualClock
) -> None:
    # The background consumer fails and waits long to retry: only the relay drops windows.
    inner.broken_feeds = 1
    cached = TopCache(inner, STALENESS, clock=clock, restart_backoff=60)
    try:
        await cached.top(GLOBAL, PERIOD, 3, 0)  # the failure dropped this read
        assert inner.feeds_opened == 1
        await cached.top(GLOBAL, PERIOD, 3, 0)
        relayed = cached.changes(GLOBAL)
        next_change = asyncio.ensure_future(anext(relayed))
        await asyncio.wait_for(inner.subscribed.wait(), TIMEOUT)
        await inner.increment([inc("j", 1000)])
        change = await asyncio.wait_for(next_change, TIMEOUT)
        assert (change.username, change.rank) == ("j", 1)
        # A live subscription re-reads the top on this change: it must not get the old one.
        assert names(await cached.top(GLOBAL, PERIOD, 3, 0)) == ["j", "a", "b"]
        assert (inner.top_reads, inner.feeds_opened) == (3, 2)
        await relayed.aclose()  # type: ignore[attr-defined]  # an async generator
    finally:
        await cached.close()


async def test_with_nothing_cached_changes_pass_through_and_later_windows_still_drop(
    cached: TopCache, inner: ScriptedStore
) -> None:
    relayed = cached.changes(GLOBAL)
    next_change = asyncio.ensure_future(anext(relayed))
    await asyncio.wait_for(inner.subscribed.wait(), TIMEOUT)
    # Nothing is cached: an own write and its change event have no window to drop.
    [outcome] = await cached.increment([inc("j", 85)])  # 10 -> 95: rank 2
    change = await asyncio.wait_for(next_change, TIMEOUT)
    assert (outcome.rank, change.username, change.rank, change.previous_rank) == (2, "j", 2, 10)
    assert cached.invalidations == 0
    # A window cached afterwards is dropped by the next change that reaches it.
    assert names(await cached.top(GLOBAL, PERIOD, 3, 0)) == ["a", "j", "b"]
    next_change = asyncio.ensure_future(anext(relayed))
    await inner.increment([inc("i", 100)])  # another instance: 20 -> 120, rank 1
    await asyncio.wait_for(next_change, TIMEOUT)
    assert names(await cached.top(GLOBAL, PERIOD, 3, 0)) == ["i", "a", "j"]
    assert (cached.invalidations, inner.top_reads) == (1, 2)
    # So is one dropped by an own write.
    await cached.increment([inc("h", 200)])  # 30 -> 230, rank 1
    assert names(await cached.top(GLOBAL, PERIOD, 3, 0)) == ["h", "i", "a"]
    await relayed.aclose()  # type: ignore[attr-defined]  # an async generator


async def test_a_failed_feed_is_resubscribed(
    cached: TopCache, inner: ScriptedStore, caplog: pytest.LogCaptureFixture
) -> None:
    inner.broken_feeds = 1
    await cached.top(GLOBAL, PERIOD, 3, 0)
    await asyncio.wait_for(inner.subscribed.wait(), TIMEOUT)
    assert inner.feeds_opened == 2
    assert "resubscribing" in caplog.text
    await cached.top(GLOBAL, PERIOD, 3, 0)
    await changed_elsewhere(inner, inc("j", 85))
    assert names(await cached.top(GLOBAL, PERIOD, 3, 0)) == ["a", "j", "b"]


async def test_an_ended_feed_restarts_with_the_next_miss(
    cached: TopCache, inner: ScriptedStore
) -> None:
    inner.ending_feeds = 1
    await cached.top(GLOBAL, PERIOD, 3, 0)
    await asyncio.wait_for(inner.feed_ended.wait(), TIMEOUT)
    assert inner.feeds_opened == 1
    # The feed ended while that read was in flight: it was not cached, this is a miss.
    await cached.top(GLOBAL, PERIOD, 3, 0)
    await asyncio.wait_for(inner.subscribed.wait(), TIMEOUT)
    assert (inner.feeds_opened, inner.top_reads) == (2, 2)


async def test_one_feed_per_board(cached: TopCache, inner: ScriptedStore) -> None:
    await cached.top(GLOBAL, PERIOD, 3, 0)
    await cached.top(GLOBAL, PERIOD, 4, 0)
    await cached.top(GLOBAL, OTHER_PERIOD, 3, 0)
    await inner.load("daily", "2026-05-01", [], [])
    await cached.top("daily", "2026-05-01", 3, 0)
    assert inner.feeds_opened == 2


async def test_a_relay_replaces_the_own_feed_and_ends_with_a_drop(
    cached: TopCache, inner: ScriptedStore
) -> None:
    # The cache reads its own feed until a consumer (the live subscriptions) relays one.
    await cached.top(GLOBAL, PERIOD, 3, 0)
    await asyncio.wait_for(inner.subscribed.wait(), TIMEOUT)
    inner.subscribed.clear()
    relayed = cached.changes(GLOBAL)
    next_change = asyncio.ensure_future(anext(relayed))
    await asyncio.wait_for(inner.subscribed.wait(), TIMEOUT)
    await inner.increment([inc("j", 1000)])
    assert (await asyncio.wait_for(next_change, TIMEOUT)).username == "j"
    assert inner.feeds_opened == 2
    # The relay drops what changes reach; the cache opens no feed of its own meanwhile.
    assert names(await cached.top(GLOBAL, PERIOD, 3, 0)) == ["j", "a", "b"]
    await cached.top(GLOBAL, PERIOD, 4, 0)
    assert inner.feeds_opened == 2
    reads = inner.top_reads
    await relayed.aclose()  # type: ignore[attr-defined]  # an async generator
    # Nobody relays now: what was cached may miss a change, so it is dropped, and the
    # next miss subscribes again.
    inner.subscribed.clear()
    await cached.top(GLOBAL, PERIOD, 3, 0)
    assert inner.top_reads == reads + 1
    await asyncio.wait_for(inner.subscribed.wait(), TIMEOUT)
    assert inner.feeds_opened == 3


# Memory


async def test_the_least_recently_used_window_is_evicted(
    inner: ScriptedStore, clock: ManualClock
) -> None:
    cached = TopCache(inner, STALENESS, max_entries=2, clock=clock)
    try:
        await cached.top(GLOBAL, PERIOD, 1, 0)
        await cached.top(GLOBAL, PERIOD, 2, 0)
        await cached.top(GLOBAL, PERIOD, 1, 0)  # a hit: now the most recent
        await cached.top(GLOBAL, PERIOD, 3, 0)  # evicts limit 2
        assert inner.top_reads == 3
        await cached.top(GLOBAL, PERIOD, 1, 0)
        await cached.top(GLOBAL, PERIOD, 3, 0)
        assert inner.top_reads == 3
        await cached.top(GLOBAL, PERIOD, 2, 0)
        assert inner.top_reads == 4
    finally:
        await cached.close()


# Moderation


async def test_moderation_drops_the_windows_of_its_period_at_once(
    cached: TopCache, inner: ScriptedStore
) -> None:
    await cached.top(GLOBAL, PERIOD, 3, 0)
    await cached.top(GLOBAL, OTHER_PERIOD, 3, 0)
    removed = await cached.remove(GLOBAL, PERIOD, "a")
    assert removed is not None
    assert names(await cached.top(GLOBAL, PERIOD, 3, 0)) == ["b", "c", "d"]
    assert await cached.restore(GLOBAL, PERIOD, "a", removed.score)
    assert names(await cached.top(GLOBAL, PERIOD, 3, 0)) == ["a", "b", "c"]
    assert await cached.erase(GLOBAL, PERIOD, "a", []) == 1
    assert names(await cached.top(GLOBAL, PERIOD, 3, 0)) == ["b", "c", "d"]
    # The other period's window stayed: served from its snapshot.
    assert names(await cached.top(GLOBAL, OTHER_PERIOD, 3, 0)) == ["a", "b", "c"]
    assert inner.top_reads == 5


# Lifecycle


async def test_close_stops_the_feeds_and_reads_and_leaves_the_inner_store_open(
    cached: TopCache, inner: ScriptedStore
) -> None:
    await cached.top(GLOBAL, PERIOD, 3, 0)
    await asyncio.wait_for(inner.subscribed.wait(), TIMEOUT)
    inner.reading.clear()
    inner.hold = asyncio.Event()
    held = asyncio.create_task(cached.top(GLOBAL, PERIOD, 3, 3))
    await inner.reading.wait()
    await cached.close()
    assert not inner.closed  # its owner closes it
    with pytest.raises(asyncio.CancelledError):
        await held
    assert not inner._subscribers.get(GLOBAL)  # the feed unsubscribed
    inner.hold = None
    # Closed: reads pass straight through.
    await cached.top(GLOBAL, PERIOD, 3, 0)
    assert inner.top_reads == 3
    assert cached.inner_reads == 2


def test_a_cache_needs_a_positive_bound(inner: ScriptedStore) -> None:
    with pytest.raises(ValueError, match="positive"):
        TopCache(inner, 0)
    with pytest.raises(ValueError, match="max_entries"):
        TopCache(inner, 0.1, max_entries=0)


async def test_a_board_is_held_before_its_first_read_and_released_once_not_read(
    inner: ScriptedStore, clock: ManualClock
) -> None:
    idle = 0.25  # the cache's clock (manual); the release check runs every idle / 3 s
    cached = TopCache(inner, STALENESS, clock=clock, restart_backoff=0.01, hold_idle=idle)
    try:
        await cached.top(GLOBAL, PERIOD, 3, 0)
        assert (inner.holds, inner.reads_unheld) == (1, 0)
        await cached.top(GLOBAL, OTHER_PERIOD, 3, 0)
        assert inner.holds == 1  # once per board
        clock.advance(idle / 2)
        await cached.top(GLOBAL, PERIOD, 3, 0)  # read, so not idle
        clock.advance(idle / 2 + TICK)
        await asyncio.sleep(idle)  # several checks: read idle / 2 ago
        assert inner.holds == 1
        clock.advance(idle / 2)
        await until_true(lambda: inner.holds == 0)
        # The next read is a miss (older than the bound): held again before it reads.
        reads = inner.top_reads
        await cached.top(GLOBAL, PERIOD, 3, 0)
        assert inner.top_reads == reads + 1
        assert (inner.holds, inner.reads_unheld) == (1, 0)
    finally:
        await cached.close()
    assert inner.holds == 0
