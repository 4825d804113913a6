"""The spread write path (store/redis/spread.py: sharded boards, and every batch on a Redis
Cluster): it publishes only while some instance holds the board, and ranks only when asked
or published, with the same ranks as when asked."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
import redis.asyncio as redis_asyncio
from redis.asyncio.cluster import RedisCluster

from store.board_kinds import UpdateRule
from store.boards import Board, ResetPeriod
from store.models import IncrementOutcome, ScoreChange
from store.redis import RedisRankingStore
from store.redis.changes import change_of
from store.redis.keys import KeyLayout
from store.redis.spread import SpreadWrites
from tests.support.ranking import GLOBAL, PERIOD, PROBE_PERIOD, ChangeFeed, inc
from tests.support.shared_services import REDIS_URL

pytestmark = pytest.mark.integration

RETENTION = timedelta(days=35)
CAPPED = "capped"
"""An INCREMENT board with a cap: write.lua's (which always ranks in the script)."""


def boards(shards: int) -> tuple[Board, ...]:
    """A plain board (increment.lua) and a capped one (write.lua), over `shards` sets."""
    return (
        Board(GLOBAL, ResetPeriod.MONTHLY, shards=shards),
        Board(
            CAPPED,
            ResetPeriod.MONTHLY,
            update_rule=UpdateRule.INCREMENT,
            max_score=10**9,
            shards=shards,
        ),
    )


@dataclasses.dataclass
class Deployment:
    """A writing store, another instance that listens (and holds the board when told),
    and a plain client to clear a board's marker as a stopped instance's would lapse."""

    writer: RedisRankingStore
    listener: RedisRankingStore
    raw: Any
    layout: KeyLayout
    sharded: bool

    def unasked(self, board: str, rank: int) -> int:
        """The rank a write not asked for ranks answers on an unwatched board: 0, but
        write.lua's own on an unsharded board (it always ranks; a shard's never shows)."""
        return rank if board == CAPPED and not self.sharded else 0


@pytest.fixture(params=["redis-sharded", "cluster", "cluster-sharded"])
async def deployment(
    request: pytest.FixtureRequest, redis_prefix: str
) -> AsyncIterator[Deployment]:
    """Each deployment that takes the spread path, under the test's key prefix."""
    cluster = request.param.startswith("cluster")
    url = request.getfixturevalue("redis_cluster").url() if cluster else REDIS_URL
    sharded = request.param.endswith("sharded")
    served = boards(4 if sharded else 1)

    def store() -> RedisRankingStore:
        return RedisRankingStore.from_url(
            url, key_prefix=redis_prefix, boards=served, retention=RETENTION, cluster=cluster
        )

    raw = RedisCluster.from_url(url) if cluster else redis_asyncio.Redis.from_url(url)
    writer, listener = store(), store()
    yield Deployment(writer, listener, raw, KeyLayout(redis_prefix, served, RETENTION), sharded)
    await writer.close()
    await listener.close()
    await raw.aclose()


async def listening(deployment: Deployment, board: str) -> ChangeFeed:
    """A feed of `board` on the listener that holds nothing, once it delivers; the board's
    marker cleared again (the writer never saw it)."""
    listener = deployment.listener
    feed = ChangeFeed(listener, board, watch=False)
    await listener.watch(board)
    await feed.ready()
    listener.unwatch(board)
    await deployment.raw.delete(deployment.layout.watched(board))
    return feed


async def silent(feed: ChangeFeed) -> bool:
    """Whether the feed gets no change (outside the probe period) for a while."""
    try:
        await feed.next(timeout=0.4)
    except TimeoutError:
        return True
    return False


@pytest.mark.parametrize("board", [GLOBAL, CAPPED])
@pytest.mark.parametrize("select_ranks", [True, False], ids=["ranks", "no-ranks"])
async def test_a_board_nobody_watches_publishes_nothing_and_a_watched_one_does(
    deployment: Deployment, select_ranks: bool, board: str
) -> None:
    writer = deployment.writer
    await writer.load(board, PERIOD, [("alice", 10)], [])
    feed = await listening(deployment, board)
    try:
        # Nobody holds the board: nothing is published, and the ranks are there only
        # when asked for.
        (unwatched,) = await writer.increment(
            [inc("bob", 5, "b1", board=board)], ranks=select_ranks
        )
        assert (unwatched.applied, unwatched.score) == (True, 5)
        assert unwatched.rank == (2 if select_ranks else deployment.unasked(board, 2))
        assert await silent(feed)

        # Held by the other instance: every write that ends from then on is published with
        # its ranks, asked for or not (the first one's derived after the call, the next
        # ones' by the script once the writer has seen the board watched).
        await deployment.listener.watch(board)
        for number, expected in [(2, (2, 1)), (3, (1, 1))]:
            (watched,) = await writer.increment(
                [inc("bob", 5, f"b{number}", board=board)], ranks=select_ranks
            )
            assert (watched.previous_rank, watched.rank) == expected
            assert await feed.next() == change_of(watched)
        deployment.listener.unwatch(board)

        # Released, and its marker lapsed (as a stopped instance's would): nothing again,
        # and no ranks once the writer has seen it unwatched (the first write may still
        # rank: the writer last saw the board watched).
        await deployment.raw.delete(deployment.layout.watched(board))
        for number in (4, 5):
            (again,) = await writer.increment(
                [inc("bob", 5, f"b{number}", board=board)], ranks=select_ranks
            )
        assert again.rank == (1 if select_ranks else deployment.unasked(board, 1))
        assert await silent(feed)
    finally:
        await feed.close()


def standings(outcomes: list[IncrementOutcome]) -> list[tuple[Any, ...]]:
    """What a write answers, ranks included."""
    return [
        (o.increment.username, o.applied, o.score, o.previous_score, o.rank, o.previous_rank)
        for o in outcomes
    ]


@pytest.mark.parametrize("board", [GLOBAL, CAPPED])
@pytest.mark.parametrize("held", [False, True], ids=["unwatched", "watched"])
async def test_ranks_are_left_out_only_when_neither_asked_for_nor_published(
    deployment: Deployment, held: bool, board: str
) -> None:
    # The same calls on two periods holding the same players: one asks for ranks, one not.
    writer = deployment.writer
    players = [("alice", 30), ("bob", 20), ("carol", 20), ("dave", 10), ("erin", 10)]
    for period in (PERIOD, PROBE_PERIOD):
        await writer.load(board, period, players, [])
    if held:
        await deployment.listener.watch(board)
    calls = [
        [("bob", 15, "e1"), ("zed", 3, None), ("bob", 1, "e2"), ("erin", 40, None)],
        [("bob", 15, "e1"), ("frank", 40, None)],  # a replay of e1: not applied
        [("zed", -3, None), ("carol", 0, "e3"), ("dave", 25, None)],
    ]
    try:
        for call in calls:
            ranked = await writer.increment(
                [inc(name, delta, event, board=board) for name, delta, event in call],
                ranks=True,
            )
            unranked = await writer.increment(
                [
                    inc(name, delta, event, board=board, period=PROBE_PERIOD)
                    for name, delta, event in call
                ],
                ranks=False,
            )
            if held:  # published: the ranks of an asked-for call
                assert standings(unranked) == standings(ranked)
            else:
                assert standings(unranked) == [
                    (
                        *fields[:4],
                        deployment.unasked(board, fields[4]),
                        None if fields[5] is None else deployment.unasked(board, fields[5]),
                    )
                    for fields in standings(ranked)
                ]
            assert all(outcome.rank > 0 for outcome in ranked)
    finally:
        if held:
            deployment.listener.unwatch(board)


async def test_a_batch_over_two_boards_publishes_only_the_watched_one(
    deployment: Deployment,
) -> None:
    writer = deployment.writer
    for board in (GLOBAL, CAPPED):
        await writer.load(board, PERIOD, [("alice", 10)], [])
    feeds = [await listening(deployment, board) for board in (GLOBAL, CAPPED)]
    try:
        await deployment.listener.watch(CAPPED)
        outcomes = await writer.increment(
            [inc("bob", 20, board=GLOBAL), inc("bob", 20, board=CAPPED)], ranks=False
        )
        assert [outcome.rank for outcome in outcomes] == [0, 1]  # GLOBAL: increment.lua
        assert await feeds[1].next() == ScoreChange(
            board=CAPPED,
            period=PERIOD,
            username="bob",
            previous_score=None,
            score=20,
            previous_rank=None,
            rank=1,
        )
        assert await silent(feeds[0])
    finally:
        deployment.listener.unwatch(CAPPED)
        for feed in feeds:
            await feed.close()


@pytest.mark.parametrize("board", [GLOBAL, CAPPED])
@pytest.mark.parametrize("select_ranks", [True, False], ids=["ranks", "no-ranks"])
async def test_a_watcher_that_arrives_just_before_the_writes_gets_them(
    deployment: Deployment, select_ranks: bool, board: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The order that keeps every change seen: the markers are read after the writes. Here
    # the other instance holds the board (marker set, its first read done) after the
    # writer began its call but before the scripts run: the write must be published.
    writer = deployment.writer
    await writer.load(board, PERIOD, [("alice", 10)], [])
    feed = await listening(deployment, board)
    apply = SpreadWrites._apply

    async def watcher_arrives_first(self: SpreadWrites, *args: Any, **kwargs: Any) -> Any:
        await deployment.listener.watch(board)
        assert await deployment.listener.top(board, PERIOD, 10, 0)  # its first read
        return await apply(self, *args, **kwargs)

    monkeypatch.setattr(SpreadWrites, "_apply", watcher_arrives_first)
    try:
        (outcome,) = await writer.increment([inc("bob", 20, board=board)], ranks=select_ranks)
        assert await feed.next() == change_of(outcome)
        assert (outcome.previous_rank, outcome.rank) == (None, 1)
    finally:
        deployment.listener.unwatch(board)
        await feed.close()
