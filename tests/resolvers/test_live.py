"""The per-instance subscription fan-out: rankChanged and topPlayersChanged from the change feed."""

from __future__ import annotations

import asyncio
import functools
import gc
import itertools
import logging
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import pytest

from resolvers.live import LiveRankings, RankUpdate
from store.board_kinds import SortOrder, TieBreak, UpdateRule
from store.boards import Board, ResetPeriod
from store.embedded_ranking import EmbeddedRankingStore
from store.errors import StoreUnavailable
from store.models import RankedPlayer, ScoreChange, ScoreIncrement

pytestmark = pytest.mark.unit

T = TypeVar("T")

GLOBAL = Board("global", ResetPeriod.MONTHLY)
DAILY = Board("daily", ResetPeriod.DAILY)
NOVEMBER = "2026-11"
DECEMBER = "2026-12"
TIMEOUT = 3.0


class FakeClock:
    """A settable wall clock (the live feed asks it for the current period)."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC).timestamp()

    def __call__(self) -> float:
        return self.now


class FakeRanking:
    """Totals per board period; the store's change feed (one queue per subscription) and reads.

    `score` applies an increment like the store does and publishes its `ScoreChange`
    unless told to lose it (pub/sub dropping a message), or nobody holds the board (the
    Redis store publishes only boards an instance holds: store/redis/watchers.py).
    """

    def __init__(self) -> None:
        self.totals: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
        self.queues: dict[str, list[asyncio.Queue[ScoreChange | Exception]]] = defaultdict(list)
        self.subscriptions: Counter[str] = Counter()
        self.failing_subscriptions = 0
        self.failing_reads = False
        self.player_reads = 0
        self.top_reads = 0
        self.holds: Counter[str] = Counter()
        self.unpublished = 0
        """Changes not published because nobody held the board."""
        self.reads_unheld = 0
        """Reads made while nobody held the board (one could miss an unpublished change)."""

    # The change feed

    async def watch(self, board: str) -> None:
        """Hold the board: its changes are published from now on."""
        self.holds[board] += 1

    def unwatch(self, board: str) -> None:
        """Release one hold."""
        assert self.holds[board] > 0
        self.holds[board] -= 1

    async def changes(self, board: str, *, watch: bool = True) -> AsyncIterator[ScoreChange]:
        """Every published change of the board, until a queued exception is raised."""
        self.subscriptions[board] += 1
        if self.failing_subscriptions:
            self.failing_subscriptions -= 1
            raise StoreUnavailable("redis is down")
        queue: asyncio.Queue[ScoreChange | Exception] = asyncio.Queue()
        self.queues[board].append(queue)
        try:
            while True:
                item = await queue.get()
                if isinstance(item, Exception):
                    raise item
                yield item
        finally:
            self.queues[board].remove(queue)

    def subscribers(self, board: str) -> int:
        """Open subscriptions of a board's feed."""
        return len(self.queues[board])

    def break_feed(self, board: str) -> None:
        """Make every open subscription of the board fail."""
        for queue in self.queues[board]:
            queue.put_nowait(StoreUnavailable("connection lost"))

    async def drained(self) -> None:
        """Wait until every subscriber took (and so processed) everything published."""
        await until(lambda: all(q.empty() for queues in self.queues.values() for q in queues))

    # Writes

    def score(
        self,
        username: str,
        delta: int,
        *,
        board: str = "global",
        period: str = NOVEMBER,
        publish: bool = True,
    ) -> ScoreChange:
        """Apply an increment and publish it (or lose it)."""
        totals = self.totals[board, period]
        previous = totals.get(username)
        previous_rank = None if previous is None else self._rank(totals, previous)
        totals[username] = (previous or 0) + delta
        change = ScoreChange(
            board=board,
            period=period,
            username=username,
            previous_score=previous,
            score=totals[username],
            previous_rank=previous_rank,
            rank=self._rank(totals, totals[username]),
        )
        if publish and not self.holds[board]:
            self.unpublished += 1
        elif publish:
            for queue in self.queues[board]:
                queue.put_nowait(change)
        return change

    def remove(self, username: str, *, board: str = "global", period: str = NOVEMBER) -> None:
        """Take a player out (removePlayer) and publish the removal."""
        totals = self.totals[board, period]
        score = totals[username]
        rank = self._rank(totals, score)
        del totals[username]
        change = ScoreChange(
            board=board,
            period=period,
            username=username,
            previous_score=score,
            score=score,
            previous_rank=rank,
            rank=rank,
            removed=True,
        )
        for queue in self.queues[board]:
            queue.put_nowait(change)

    # Reads (the RankingReader)

    async def player(self, board: str, period: str, username: str) -> RankedPlayer | None:
        """One player's standing."""
        self.player_reads += 1
        self.reads_unheld += not self.holds[board]
        if self.failing_reads:
            raise StoreUnavailable("reads are failing")
        totals = self.totals[board, period]
        if username not in totals:
            return None
        return RankedPlayer(
            username=username, score=totals[username], rank=self._rank(totals, totals[username])
        )

    async def top(self, board: str, period: str, limit: int) -> list[RankedPlayer]:
        """The best `limit` players."""
        self.top_reads += 1
        self.reads_unheld += not self.holds[board]
        if self.failing_reads:
            raise StoreUnavailable("reads are failing")
        totals = self.totals[board, period]
        best = sorted(totals.items(), key=lambda item: (-item[1], item[0]))[:limit]
        return [
            RankedPlayer(username=name, score=total, rank=self._rank(totals, total))
            for name, total in best
        ]

    @staticmethod
    def _rank(totals: dict[str, int], score: int) -> int:
        return 1 + sum(1 for other in totals.values() if other > score)


class Collector(Generic[T]):
    """Consumes a watcher in a task, like a WebSocket would, keeping what it yields."""

    def __init__(self, iterator: AsyncIterator[T]) -> None:
        self.items: list[T] = []
        self.finished = False
        self._task = asyncio.create_task(self._run(iterator))

    async def _run(self, iterator: AsyncIterator[T]) -> None:
        async for item in iterator:
            self.items.append(item)
        self.finished = True

    async def wait_for(self, count: int) -> list[T]:
        """The items once there are at least `count` of them."""
        await until(lambda: len(self.items) >= count)
        return self.items

    async def stop(self) -> None:
        """Cancel the consuming task (a WebSocket closing)."""
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


async def until(condition: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    """Poll a condition until it holds (fails the test after `timeout`)."""
    async with asyncio.timeout(timeout):
        while True:
            if condition():
                return
            await asyncio.sleep(0.001)


LiveFactory = Callable[..., Awaitable[LiveRankings]]


@pytest.fixture
def fake() -> FakeRanking:
    """The fake store and reader."""
    return FakeRanking()


@pytest.fixture
def clock() -> FakeClock:
    """The clock of the live feed."""
    return FakeClock()


@pytest.fixture
async def make_live(fake: FakeRanking, clock: FakeClock) -> AsyncIterator[LiveFactory]:
    """Start live rankings over the fake (closed after the test); resync is slow unless asked."""
    started: list[LiveRankings] = []

    async def make(**options: Any) -> LiveRankings:
        settings: dict[str, Any] = {
            "resync_interval": 60.0,
            "top_coalesce": 0.05,
            "clock": clock,
            "restart_backoff": 0.01,
        }
        live = LiveRankings(fake, fake, [GLOBAL, DAILY], **(settings | options))
        started.append(live)
        await live.start()
        return live

    yield make
    for live in started:
        await live.close()


@pytest.fixture
async def live(make_live: LiveFactory) -> LiveRankings:
    """Live rankings with the default test settings."""
    return await make_live()


def update(score: int, rank: int, previous: int | None, period: str = NOVEMBER) -> RankUpdate:
    """A rankChanged update of ana on the global board."""
    return RankUpdate("ana", "global", period, score, rank, previous)


def names(players: list[RankedPlayer]) -> list[tuple[str, int, int]]:
    """A top list as (username, score, rank)."""
    return [(player.username, player.score, player.rank) for player in players]


# Holding the board (writes publish only boards an instance holds)


async def test_a_board_is_held_from_before_its_first_watchers_read_until_the_last_leaves(
    fake: FakeRanking, live: LiveRankings
) -> None:
    fake.score("bo", 20)
    fake.score("ana", 10)
    assert (fake.unpublished, fake.holds["global"]) == (2, 0)
    player = Collector(live.watch_player("global", "ana"))
    top = Collector(live.watch_top("global", 3))
    # The first state has the writes nobody heard of: the board was held before the reads.
    assert await player.wait_for(1) == [update(10, 2, None)]
    assert names((await top.wait_for(1))[0]) == [("bo", 20, 1), ("ana", 10, 2)]
    assert fake.reads_unheld == 0
    assert fake.holds["global"] == 1  # once for the board, however many watchers
    fake.score("ana", 15)
    assert (await player.wait_for(2))[1] == update(25, 1, 2)
    await player.stop()
    assert fake.holds["global"] == 1  # the top watcher still needs the changes
    await top.stop()
    await until(lambda: fake.holds["global"] == 0)
    fake.score("ana", 1)
    assert fake.unpublished == 3


# rankChanged


async def test_first_update_is_the_standing_now(fake: FakeRanking, live: LiveRankings) -> None:
    fake.score("bo", 20)
    fake.score("ana", 10)
    watcher = Collector(live.watch_player("global", "ana"))
    assert await watcher.wait_for(1) == [update(10, 2, None)]


async def test_a_player_without_score_gets_nothing_until_the_first_score(
    fake: FakeRanking, live: LiveRankings
) -> None:
    fake.score("bo", 20)
    watcher = Collector(live.watch_player("global", "ana"))
    await until(lambda: fake.player_reads == 1)
    fake.score("ana", 5)
    assert await watcher.wait_for(1) == [update(5, 2, None)]


async def test_own_score_reports_the_events_ranks(fake: FakeRanking, live: LiveRankings) -> None:
    fake.score("bo", 20)
    fake.score("ana", 10)
    watcher = Collector(live.watch_player("global", "ana"))
    await watcher.wait_for(1)
    fake.score("ana", 15)
    assert (await watcher.wait_for(2))[1] == update(25, 1, 2)


async def test_a_player_passing_moves_the_rank_down_by_one(
    fake: FakeRanking, live: LiveRankings
) -> None:
    fake.score("bo", 20)
    fake.score("ana", 10)
    fake.score("cy", 5)
    watcher = Collector(live.watch_player("global", "ana"))
    await watcher.wait_for(1)
    fake.score("cy", 6)  # 5 -> 11, passes ana
    fake.score("di", 11)  # a new player above ana
    assert (await watcher.wait_for(3))[1:] == [update(10, 3, 2), update(10, 4, 3)]
    assert fake.player_reads == 1  # decided from the events alone


async def test_a_player_falling_below_moves_the_rank_up_by_one(
    fake: FakeRanking, live: LiveRankings
) -> None:
    fake.score("bo", 20)
    fake.score("cy", 30)
    fake.score("ana", 10)
    watcher = Collector(live.watch_player("global", "ana"))
    await watcher.wait_for(1)
    fake.score("bo", -15)  # 20 -> 5
    fake.score("cy", -20)  # 30 -> 10: a tie is not above
    assert (await watcher.wait_for(3))[1:] == [update(10, 2, 3), update(10, 1, 2)]


async def test_a_removal_moves_those_below_up_and_ends_the_removed_players_standing(
    fake: FakeRanking, live: LiveRankings
) -> None:
    fake.score("bo", 20)
    fake.score("cy", 20)
    fake.score("ana", 10)
    fake.score("di", 30)
    below = Collector(live.watch_player("global", "ana"))
    removed = Collector(live.watch_player("global", "bo"))
    above = Collector(live.watch_player("global", "di"))
    tied = Collector(live.watch_player("global", "cy"))
    await below.wait_for(1)
    await removed.wait_for(1)
    await above.wait_for(1)
    await tied.wait_for(1)
    fake.remove("bo")
    assert (await below.wait_for(2))[1] == update(10, 3, 4)
    fake.score("ana", 15)  # passes the score bo had: bo has no standing to move
    assert (await below.wait_for(3))[2] == update(25, 2, 3)
    await fake.drained()
    assert len(removed.items) == 1
    fake.score("bo", 1)  # afresh: a first score, no previous rank
    assert (await removed.wait_for(2))[1] == RankUpdate("bo", "global", NOVEMBER, 1, 4, None)
    await fake.drained()
    assert len(above.items) == 1
    # The removal did not move a tie (it was not below); ana passing it did.
    assert [item.rank for item in tied.items] == [2, 3]
    assert fake.player_reads == 4  # decided from the events alone


async def test_reaching_a_tie_does_not_pass(fake: FakeRanking, live: LiveRankings) -> None:
    fake.score("ana", 10)
    fake.score("bo", 4)
    watcher = Collector(live.watch_player("global", "ana"))
    await watcher.wait_for(1)
    fake.score("bo", 6)  # ties ana
    fake.score("cy", 10)  # a new player tying ana
    fake.score("bo", 1)  # now passes: the marker that the ties were processed
    assert await watcher.wait_for(2) == [update(10, 1, None), update(10, 2, 1)]
    await fake.drained()
    assert len(watcher.items) == 2


async def test_movement_that_crosses_nobody_watched_changes_nothing(
    fake: FakeRanking, live: LiveRankings
) -> None:
    fake.score("ana", 10)
    fake.score("bo", 1)
    fake.score("cy", 50)
    watcher = Collector(live.watch_player("global", "ana"))
    await watcher.wait_for(1)
    fake.score("bo", 5)  # below, stays below
    fake.score("cy", 10)  # above, stays above
    fake.score("zed", 3)  # new, below
    fake.score("ana", 1, board="daily", period="2026-11-23")  # another board
    fake.score("ana", 1, period="2026-10")  # another period
    fake.score("ana", 1)  # the marker
    assert await watcher.wait_for(2) == [update(10, 2, None), update(11, 2, 2)]
    await fake.drained()
    assert len(watcher.items) == 2


async def test_every_watcher_of_a_player_gets_every_update(
    fake: FakeRanking, live: LiveRankings
) -> None:
    fake.score("ana", 10)
    first = Collector(live.watch_player("global", "ana"))
    await first.wait_for(1)
    fake.score("bo", 20)
    await first.wait_for(2)
    second = Collector(live.watch_player("global", "ana"))
    assert await second.wait_for(1) == [update(10, 2, None)]
    fake.score("ana", 15)
    assert (await first.wait_for(3))[1:] == [update(10, 2, 1), update(25, 1, 2)]
    assert await second.wait_for(2) == [update(10, 2, None), update(25, 1, 2)]
    assert live.subscriber_count == 2


async def test_a_lost_message_is_healed_by_the_resync(
    fake: FakeRanking, make_live: LiveFactory
) -> None:
    live = await make_live(resync_interval=0.05)
    fake.score("ana", 10)
    watcher = Collector(live.watch_player("global", "ana"))
    await watcher.wait_for(1)
    fake.score("bo", 20, publish=False)
    assert (await watcher.wait_for(2))[1] == update(10, 2, 1)
    # The known score is corrected too: later events are judged against it.
    fake.score("ana", 30, publish=False)  # 40, rank 1
    assert (await watcher.wait_for(3))[2] == update(40, 1, 2)
    fake.score("cy", 35)  # would pass the stale 10, not 40
    fake.score("ana", 1)  # the marker
    assert (await watcher.wait_for(4))[3] == update(41, 1, 1)
    await fake.drained()
    assert len(watcher.items) == 4


async def test_the_rank_read_failing_is_logged_and_retried(
    fake: FakeRanking, make_live: LiveFactory, caplog: pytest.LogCaptureFixture
) -> None:
    live = await make_live(resync_interval=0.02)
    fake.score("ana", 10)
    watcher = Collector(live.watch_player("global", "ana"))
    await watcher.wait_for(1)
    fake.failing_reads = True
    fake.score("bo", 20, publish=False)
    await until(lambda: "could not be re-read" in caplog.text)
    fake.failing_reads = False
    assert (await watcher.wait_for(2))[1] == update(10, 2, 1)


async def test_a_failing_first_read_ends_the_subscription_with_the_error(
    fake: FakeRanking, live: LiveRankings
) -> None:
    fake.failing_reads = True
    iterator = live.watch_player("global", "ana")
    with pytest.raises(StoreUnavailable):
        await anext(iterator)
    assert live.subscriber_count == 0


async def test_rollover_starts_the_new_period_without_a_rank(
    fake: FakeRanking, clock: FakeClock, live: LiveRankings
) -> None:
    fake.score("ana", 10)
    fake.score("bo", 20)
    watcher = Collector(live.watch_player("global", "ana"))
    await watcher.wait_for(1)
    clock.now = datetime(2026, 12, 1, 0, 0, 1, tzinfo=UTC).timestamp()
    fake.score("bo", 5, period=DECEMBER)  # the new period's first score: ana has none
    fake.score("cy", 50, period=NOVEMBER)  # the old period is over
    fake.score("ana", 3, period=DECEMBER)
    assert (await watcher.wait_for(2))[1] == update(3, 2, None, DECEMBER)
    fake.score("cy", 4, period=DECEMBER)  # new in December, passes ana there
    assert (await watcher.wait_for(3))[2] == update(3, 3, 2, DECEMBER)
    await fake.drained()
    assert len(watcher.items) == 3


async def test_rollover_found_by_the_resync_rereads_the_new_period(
    fake: FakeRanking, clock: FakeClock, make_live: LiveFactory
) -> None:
    live = await make_live(resync_interval=0.05)
    fake.score("ana", 10)
    watcher = Collector(live.watch_player("global", "ana"))
    await watcher.wait_for(1)
    # Another instance saw December first; this one lost the message.
    clock.now = datetime(2026, 12, 1, 0, 0, 1, tzinfo=UTC).timestamp()
    fake.score("ana", 7, period=DECEMBER, publish=False)
    assert (await watcher.wait_for(2))[1] == update(7, 1, None, DECEMBER)


async def test_events_nobody_watches_are_skipped_and_a_later_watcher_starts_right(
    fake: FakeRanking, clock: FakeClock, live: LiveRankings
) -> None:
    fake.score("ana", 10)
    first = Collector(live.watch_player("global", "ana"))
    await first.wait_for(1)
    await first.stop()
    # Nobody watches the board now: its events, a rollover among them, change nothing here.
    clock.now = datetime(2026, 12, 1, 0, 0, 1, tzinfo=UTC).timestamp()
    fake.score("bo", 20, period=DECEMBER)
    fake.score("ana", 5, period=DECEMBER)
    await fake.drained()
    assert (fake.player_reads, fake.top_reads) == (1, 0)
    # A watcher arriving later finds the new period by its first read...
    watcher = Collector(live.watch_player("global", "ana"))
    assert await watcher.wait_for(1) == [update(5, 2, None, DECEMBER)]
    # ...and from then on events are handled again, for players and top lists alike.
    fake.score("cy", 30, period=DECEMBER)  # passes ana
    assert (await watcher.wait_for(2))[1] == update(5, 3, 2, DECEMBER)
    top = Collector(live.watch_top("global", 2))
    assert names((await top.wait_for(1))[0]) == [("cy", 30, 1), ("bo", 20, 2)]
    await watcher.stop()
    fake.score("ana", 30, period=DECEMBER)  # a top watcher alone still sees every event
    assert names((await top.wait_for(2))[1]) == [("ana", 35, 1), ("cy", 30, 2)]


# topPlayersChanged


async def test_top_sends_the_list_now_then_each_new_list(
    fake: FakeRanking, live: LiveRankings
) -> None:
    fake.score("ana", 10)
    watcher = Collector(live.watch_top("global", 2))
    assert names((await watcher.wait_for(1))[0]) == [("ana", 10, 1)]
    fake.score("bo", 20)
    assert names((await watcher.wait_for(2))[1]) == [("bo", 20, 1), ("ana", 10, 2)]
    fake.score("cy", 15)
    assert names((await watcher.wait_for(3))[2]) == [("bo", 20, 1), ("cy", 15, 2)]
    fake.score("ana", -5)  # a player that left the list drops further: no new list
    fake.score("bo", -10)  # 10: a listed player moving reorders it
    assert names((await watcher.wait_for(4))[3]) == [("cy", 15, 1), ("bo", 10, 2)]


async def test_top_is_not_reread_on_an_event_that_cannot_change_it(
    fake: FakeRanking, live: LiveRankings
) -> None:
    for name, total in [("ana", 50), ("bo", 40), ("cy", 30), ("di", 20), ("ed", 10)]:
        fake.score(name, total)
    watcher = Collector(live.watch_top("global", 3))
    await watcher.wait_for(1)
    assert fake.top_reads == 1
    fake.score("ed", 5)  # 15 < 30, the lowest shown
    fake.score("di", 9)  # 29
    fake.score("zed", 1)  # new, far below
    fake.score("ed", -100)  # falls
    fake.score("di", 1, board="daily", period="2026-11-23")  # another board
    fake.score("ana", 1, period="2026-10")  # another period
    await fake.drained()
    assert fake.top_reads == 1
    fake.score("di", 1)  # 30 ties cy, the lowest shown: may enter (it does not: cy < di)
    await until(lambda: fake.top_reads == 2)
    fake.score("di", 1)  # 31: enters
    lists = await watcher.wait_for(2)
    assert names(lists[1]) == [("ana", 50, 1), ("bo", 40, 2), ("di", 31, 3)]
    assert fake.top_reads == 3
    await fake.drained()
    assert len(watcher.items) == 2  # the tie re-read found the same list: nothing sent


async def test_top_coalesces_a_burst_into_few_reads(fake: FakeRanking, live: LiveRankings) -> None:
    watchers = [Collector(live.watch_top("global", 3)) for _ in range(5)]
    for watcher in watchers:
        await watcher.wait_for(1)
    reads_before = fake.top_reads
    for step in range(100):
        fake.score(f"p{step % 7}", step + 1)
        await asyncio.sleep(0)  # spread over many loop turns, well within one coalesce window
    expected = await fake.top("global", NOVEMBER, 3)
    await until(lambda: all(watcher.items[-1] == expected for watcher in watchers))
    # One read at the start of the burst, one after the window, shared by the five watchers
    # (the expected list above was one more read).
    assert fake.top_reads - reads_before - 1 <= 3
    assert len(watchers[0].items) <= 4


async def test_top_resync_heals_a_lost_message(fake: FakeRanking, make_live: LiveFactory) -> None:
    live = await make_live(resync_interval=0.05)
    fake.score("ana", 10)
    watcher = Collector(live.watch_top("global", 2))
    await watcher.wait_for(1)
    fake.score("bo", 20, publish=False)
    assert names((await watcher.wait_for(2))[1]) == [("bo", 20, 1), ("ana", 10, 2)]


async def test_top_rollover_sends_the_new_periods_list(
    fake: FakeRanking, clock: FakeClock, live: LiveRankings
) -> None:
    fake.score("ana", 10)
    watcher = Collector(live.watch_top("global", 2))
    await watcher.wait_for(1)
    clock.now = datetime(2026, 12, 1, 0, 0, 1, tzinfo=UTC).timestamp()
    fake.score("bo", 3, period=DECEMBER)
    assert names((await watcher.wait_for(2))[1]) == [("bo", 3, 1)]


# Slow consumers, unregistering, subscriptions


async def test_a_slow_player_watcher_keeps_a_bounded_queue_with_honest_previous_ranks(
    fake: FakeRanking, make_live: LiveFactory
) -> None:
    live = await make_live(subscriber_queue=4)
    for number in range(1, 21):
        fake.score(f"p{number:02d}", number * 100)
    fake.score("ana", 50)  # rank 21
    iterator = live.watch_player("global", "ana")
    assert await anext(iterator) == update(50, 21, None)
    for _ in range(20):  # each passes one more player
        fake.score("ana", 100)
    await fake.drained()
    queued = iterator._mailbox  # type: ignore[attr-defined]  # the watcher's queue, to measure it
    assert len(queued) <= 4
    received: list[RankUpdate] = []
    while len(queued):
        received.append(await anext(iterator))
    assert received[-1] == update(2050, 1, received[-1].previous_rank)
    assert received[0].previous_rank == 21  # what the client last saw
    for before, after in itertools.pairwise(received):
        assert after.previous_rank == before.rank
    await iterator.aclose()  # type: ignore[attr-defined]


async def test_a_slow_top_watcher_gets_the_newest_list(
    fake: FakeRanking, make_live: LiveFactory
) -> None:
    live = await make_live(subscriber_queue=1, top_coalesce=0.0)
    iterator = live.watch_top("global", 2)
    assert await anext(iterator) == []
    for number in range(1, 11):
        fake.score(f"p{number:02d}", number)
        await until(functools.partial(lambda reads: fake.top_reads >= reads, number + 1))
    assert names(await anext(iterator)) == [("p10", 10, 1), ("p09", 9, 2)]
    await iterator.aclose()  # type: ignore[attr-defined]


async def test_stopping_a_watcher_unregisters_it_at_once(
    fake: FakeRanking, live: LiveRankings
) -> None:
    fake.score("ana", 10)
    closed = live.watch_player("global", "ana")
    await anext(closed)
    cancelled = Collector(live.watch_top("global", 3))
    await cancelled.wait_for(1)
    dropped = live.watch_player("global", "ana")
    await anext(dropped)
    never_started = live.watch_top("global", 5)
    assert live.subscriber_count == 4

    await closed.aclose()  # type: ignore[attr-defined]
    assert live.subscriber_count == 3
    await cancelled.stop()  # the WebSocket closed: the task awaiting the next list is cancelled
    assert live.subscriber_count == 2
    del dropped
    gc.collect()
    assert live.subscriber_count == 1
    del never_started
    gc.collect()
    assert live.subscriber_count == 0

    # Nothing is left to update: events and resyncs find no watcher.
    fake.score("ana", 5)
    fake.score("bo", 50)
    await fake.drained()
    assert fake.top_reads == 1


async def test_one_feed_subscription_per_board_whatever_the_watchers(
    fake: FakeRanking, live: LiveRankings
) -> None:
    fake.score("ana", 10)
    watchers: list[Collector[Any]] = [
        Collector(live.watch_player("global", f"p{n % 4}")) for n in range(20)
    ]
    watchers += [Collector(live.watch_top("global", 1 + n % 3)) for n in range(10)]
    watchers += [Collector(live.watch_player("daily", "ana")) for _ in range(5)]
    await until(lambda: live.subscriber_count == 35)
    await until(lambda: fake.player_reads == 25 and fake.top_reads == 10)
    assert fake.subscriptions == Counter({"global": 1, "daily": 1})
    assert fake.subscribers("global") == 1
    for watcher in watchers:
        await watcher.stop()
    assert live.subscriber_count == 0


async def test_close_ends_every_watcher(fake: FakeRanking, make_live: LiveFactory) -> None:
    live = await make_live()
    fake.score("ana", 10)
    player = Collector(live.watch_player("global", "ana"))
    top = Collector(live.watch_top("global", 3))
    await player.wait_for(1)
    await top.wait_for(1)
    await live.close()
    await until(lambda: player.finished and top.finished)
    assert live.subscriber_count == 0
    assert fake.subscribers("global") == 0
    late = live.watch_player("global", "ana")
    with pytest.raises(StopAsyncIteration):
        await anext(late)


# A failing feed


async def test_a_feed_that_cannot_subscribe_is_retried(
    fake: FakeRanking, make_live: LiveFactory, caplog: pytest.LogCaptureFixture
) -> None:
    fake.failing_subscriptions = 3
    with caplog.at_level(logging.ERROR, logger="resolvers.live"):
        live = await make_live()
        await until(lambda: fake.subscribers("global") == 1)
    assert "the change feed failed" in caplog.text
    fake.score("ana", 10)
    watcher = Collector(live.watch_player("global", "ana"))
    await watcher.wait_for(1)
    fake.score("ana", 5)
    assert (await watcher.wait_for(2))[1] == update(15, 1, 1)


async def test_a_feed_that_breaks_resubscribes_and_resyncs(
    fake: FakeRanking, make_live: LiveFactory, caplog: pytest.LogCaptureFixture
) -> None:
    live = await make_live()  # the periodic resync is far off: the restart itself resyncs
    fake.score("ana", 10)
    watcher = Collector(live.watch_player("global", "ana"))
    await watcher.wait_for(1)
    with caplog.at_level(logging.ERROR, logger="resolvers.live"):
        fake.break_feed("global")
        await until(lambda: "the change feed failed" in caplog.text)
    fake.score("bo", 20)  # published while nobody is subscribed: lost
    assert (await watcher.wait_for(2))[1] == update(10, 2, 1)
    await until(lambda: fake.subscribers("global") == 1)
    assert fake.subscriptions["global"] == 2
    fake.score("ana", 15)
    assert (await watcher.wait_for(3))[2] == update(25, 1, 2)


# Through the embedded store: its in-process feed, and reads from the same store


class StoreReader:
    """The reader over a ranking store (the service adds validation and rebuilds on top)."""

    def __init__(self, store: EmbeddedRankingStore) -> None:
        self.store = store

    async def player(self, board: str, period: str, username: str) -> RankedPlayer | None:
        """One player's standing."""
        return await self.store.player(board, period, username)

    async def top(self, board: str, period: str, limit: int) -> list[RankedPlayer]:
        """The best `limit` players."""
        return await self.store.top(board, period, limit, 0)


@pytest.fixture
async def embedded(clock: FakeClock) -> AsyncIterator[tuple[EmbeddedRankingStore, LiveRankings]]:
    """An embedded store with November loaded, and live rankings over it."""
    store = EmbeddedRankingStore(boards=[GLOBAL, DAILY])
    await store.load("global", NOVEMBER, [("ana", 10), ("bo", 20)], [])
    live = LiveRankings(
        store, StoreReader(store), [GLOBAL, DAILY], clock=clock, resync_interval=0.05
    )
    await live.start()
    yield store, live
    await live.close()
    await store.close()


async def increment(store: EmbeddedRankingStore, *deltas: tuple[str, int]) -> None:
    """Apply increments to the global board's November, in one batch."""
    await store.increment(
        [
            ScoreIncrement(
                board="global",
                period=NOVEMBER,
                username=username,
                delta=delta,
                event_id=f"e-{username}-{delta}",
                client_event_id=False,
            )
            for username, delta in deltas
        ]
    )


async def test_embedded_store_feeds_player_and_top_watchers(
    embedded: tuple[EmbeddedRankingStore, LiveRankings],
) -> None:
    store, live = embedded
    players = [Collector(live.watch_player("global", "ana")) for _ in range(3)]
    top = Collector(live.watch_top("global", 2))
    for watcher in players:
        assert await watcher.wait_for(1) == [update(10, 2, None)]
    assert names((await top.wait_for(1))[0]) == [("bo", 20, 1), ("ana", 10, 2)]

    await increment(store, ("cy", 15))  # passes ana
    for watcher in players:
        assert (await watcher.wait_for(2))[1] == update(10, 3, 2)
    assert names((await top.wait_for(2))[1]) == [("bo", 20, 1), ("cy", 15, 2)]

    await increment(store, ("ana", 11), ("bo", -6))  # ana leads; bo falls, but was below her
    await increment(store, ("ana", 1))  # the marker: bo's fall changed nothing for ana
    for watcher in players:
        assert (await watcher.wait_for(4))[2:] == [update(21, 1, 3), update(22, 1, 1)]
    await until(lambda: names(top.items[-1]) == [("ana", 22, 1), ("cy", 15, 2)])
    assert live.subscriber_count == 4
    await asyncio.gather(*(player.stop() for player in players), top.stop())
    assert live.subscriber_count == 0


async def test_embedded_store_rebuild_without_events_is_healed_by_resync(
    embedded: tuple[EmbeddedRankingStore, LiveRankings],
) -> None:
    store, live = embedded
    watcher = Collector(live.watch_player("global", "ana"))
    top = Collector(live.watch_top("global", 1))
    await watcher.wait_for(1)
    await top.wait_for(1)
    # A rebuild replaces the ranking without publishing anything.
    await store.load("global", NOVEMBER, [("ana", 10), ("bo", 20), ("cy", 30)], [])
    assert (await watcher.wait_for(2))[1] == update(10, 3, 2)
    assert names((await top.wait_for(2))[1]) == [("cy", 30, 1)]


# Boards of other kinds: the rank arithmetic from events alone, checked against reads


@pytest.mark.parametrize(
    ("rule", "order", "tie"),
    [
        (UpdateRule.BEST, SortOrder.ASC, TieBreak.EARLIEST),
        (UpdateRule.LATEST, SortOrder.DESC, TieBreak.EARLIEST),
        (UpdateRule.INCREMENT, SortOrder.ASC, TieBreak.SHARED),
        (UpdateRule.LATEST, SortOrder.ASC, TieBreak.SHARED),
    ],
)
async def test_watched_ranks_follow_every_kind_of_board_from_events_alone(
    clock: FakeClock, rule: UpdateRule, order: SortOrder, tie: TieBreak
) -> None:
    board = Board("kind", ResetPeriod.MONTHLY, update_rule=rule, sort_order=order, tie_break=tie)
    store = EmbeddedRankingStore(boards=[board])
    await store.load("kind", NOVEMBER, [], [])
    # No resync within the test: every rank must come from the events' arithmetic.
    live = LiveRankings(store, StoreReader(store), [board], clock=clock, resync_interval=60.0)
    await live.start()
    names_ = ["ana", "bo", "cy", "di"]
    try:
        for number, name in enumerate(names_):
            await store.increment([_write("kind", name, 10 + number, f"seed-{name}")])
        watchers = {name: Collector(live.watch_player("kind", name)) for name in names_}
        for watcher in watchers.values():
            await watcher.wait_for(1)
        writes = [("ana", 12), ("bo", 12), ("di", 11), ("cy", 12), ("ana", 9), ("bo", 13)]
        writes += [("di", 12), ("cy", 20), ("ana", 12), ("bo", 11)]
        for step, (name, value) in enumerate(writes):
            await store.increment([_write("kind", name, value, f"w{step}")])
            expected = {
                player: (standing.score, standing.rank)
                for player in names_
                if (standing := await store.player("kind", NOVEMBER, player)) is not None
            }
            await until(
                lambda expected=expected: all(  # type: ignore[misc]
                    (w.items[-1].score, w.items[-1].rank) == expected[p]
                    for p, w in watchers.items()
                )
            )
        await asyncio.gather(*(watcher.stop() for watcher in watchers.values()))
    finally:
        await live.close()
        await store.close()


def _write(board: str, username: str, value: int, event_id: str) -> ScoreIncrement:
    return ScoreIncrement(
        board=board,
        period=NOVEMBER,
        username=username,
        delta=value,
        event_id=event_id,
        client_event_id=False,
    )
