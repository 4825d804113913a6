"""The `RankingStore` contract, run against both implementations: Redis and embedded."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from store.cached_ranking import TopCachingRankingStore
from store.embedded_ranking import EmbeddedRankingStore
from store.errors import EventIdReused, RankingNotLoaded, ScoreOutOfRange
from store.models import MAX_EXACT_SCORE, RankedPlayer, ScoreChange, ScoreIncrement
from store.ports import RankingStore
from store.redis import RedisRankingStore
from tests.support.ranking import (
    BOARDS,
    GLOBAL,
    NOT_LOADED_OPERATIONS,
    PERIOD,
    PROBE_PERIOD,
    SHARDED_BOARDS,
    ChangeFeed,
    inc,
)
from tests.support.shared_services import REDIS_URL

pytestmark = pytest.mark.integration

SIX_PLAYERS = {"alice": 30, "bob": 20, "carol": 20, "dave": 10, "erin": 10, "frank": 5}
SIX_STANDINGS = [
    ("alice", 30, 1),
    ("bob", 20, 2),
    ("carol", 20, 2),
    ("dave", 10, 4),
    ("erin", 10, 4),
    ("frank", 5, 6),
]


@pytest.fixture(
    params=[
        "redis",
        "redis-sharded",
        "redis-cluster",
        "redis-cluster-sharded",
        "redis-top-cached",
        "embedded",
    ]
)
async def store(request: pytest.FixtureRequest, redis_prefix: str) -> AsyncIterator[RankingStore]:
    """Each implementation in turn; the Redis ones under the test's private key prefix.

    The cluster is a private one of three masters (started once per session).
    """
    ranking: RankingStore
    if request.param.startswith("redis"):
        cluster = "cluster" in request.param
        url = request.getfixturevalue("redis_cluster").url() if cluster else REDIS_URL
        ranking = RedisRankingStore.from_url(
            url,
            key_prefix=redis_prefix,
            boards=SHARDED_BOARDS if request.param.endswith("sharded") else BOARDS,
            retention=timedelta(days=35),
            cluster=cluster,
        )
        if request.param == "redis-top-cached":
            # The top() cache must keep the contract: reads after writes included.
            ranking = TopCachingRankingStore(ranking, max_staleness=0.1)
    else:
        ranking = EmbeddedRankingStore(boards=BOARDS)
    yield ranking
    await ranking.close()


async def load(
    store: RankingStore,
    totals: dict[str, int],
    client_events: tuple[tuple[str, str, int], ...] = (),
    *,
    board: str = GLOBAL,
    period: str = PERIOD,
) -> None:
    """Load a period with these totals and client events (username, event id, delta)."""
    await store.load(board, period, totals.items(), client_events)


def standings(players: list[RankedPlayer]) -> list[tuple[str, int, int]]:
    """(username, score, rank) of each player, for compact comparisons."""
    return [(player.username, player.score, player.rank) for player in players]


# Not loaded


@pytest.mark.parametrize("operation", NOT_LOADED_OPERATIONS)
async def test_every_operation_refuses_a_period_not_loaded(
    store: RankingStore, operation: str
) -> None:
    await load(store, {"alice": 1}, period=PROBE_PERIOD)  # another period does not count
    assert not await store.is_loaded(GLOBAL, PERIOD)
    with pytest.raises(RankingNotLoaded) as raised:
        await NOT_LOADED_OPERATIONS[operation](store)
    assert (raised.value.board, raised.value.period) == (GLOBAL, PERIOD)


async def test_increment_names_the_first_period_not_loaded_and_applies_nothing(
    store: RankingStore,
) -> None:
    await load(store, {})
    batch = [
        inc("alice", 1, "e1"),
        inc("bob", 1, board="daily", period="2026-05-01"),
        inc("carol", 1, board="alltime", period="all"),
    ]
    with pytest.raises(RankingNotLoaded) as raised:
        await store.increment(batch)
    assert (raised.value.board, raised.value.period) == ("daily", "2026-05-01")
    assert await store.totals(GLOBAL, PERIOD) == {}
    # The event id was not recorded either.
    [outcome] = await store.increment([inc("alice", 1, "e1")])
    assert outcome.applied


# Reads


async def test_load_then_read(store: RankingStore) -> None:
    await load(store, {"dave": 10, "carol": 20, "bob": 20, "alice": 30, "zero": 0})
    assert await store.is_loaded(GLOBAL, PERIOD)
    assert standings(await store.top(GLOBAL, PERIOD, 10, 0)) == [
        ("alice", 30, 1),
        ("bob", 20, 2),
        ("carol", 20, 2),
        ("dave", 10, 4),
        ("zero", 0, 5),  # a total of 0 is still a score in the period
    ]
    assert await store.player(GLOBAL, PERIOD, "carol") == RankedPlayer(
        username="carol", score=20, rank=2
    )
    assert await store.player(GLOBAL, PERIOD, "zero") == RankedPlayer(
        username="zero", score=0, rank=5
    )
    assert await store.player_count(GLOBAL, PERIOD) == 5
    assert await store.totals(GLOBAL, PERIOD) == {
        "dave": 10,
        "carol": 20,
        "bob": 20,
        "alice": 30,
        "zero": 0,
    }


async def test_player_without_a_score_is_none(store: RankingStore) -> None:
    await load(store, {"alice": 3})
    assert await store.player(GLOBAL, PERIOD, "nobody") is None


async def test_ties_list_by_username_in_code_point_order(store: RankingStore) -> None:
    await load(store, {"zed": 5, "Émile": 5, "amy": 5, "Zed": 5, "lead": 9, "last": 1})
    assert standings(await store.top(GLOBAL, PERIOD, 10, 0)) == [
        ("lead", 9, 1),
        ("Zed", 5, 2),
        ("amy", 5, 2),
        ("zed", 5, 2),
        ("Émile", 5, 2),
        ("last", 1, 6),
    ]


@pytest.mark.parametrize(
    ("limit", "offset", "expected"),
    [
        (10, 0, SIX_STANDINGS),
        (2, 0, SIX_STANDINGS[0:2]),
        (2, 2, SIX_STANDINGS[2:4]),  # carol ties bob on the page before: rank 2
        (2, 4, SIX_STANDINGS[4:6]),
        (1, 1, [("bob", 20, 2)]),
        (10, 5, [("frank", 5, 6)]),
        (10, 6, []),
        (0, 0, []),
    ],
)
async def test_top_pages(
    store: RankingStore, limit: int, offset: int, expected: list[tuple[str, int, int]]
) -> None:
    await load(store, SIX_PLAYERS)
    assert standings(await store.top(GLOBAL, PERIOD, limit, offset)) == expected


@pytest.mark.parametrize(
    ("username", "radius", "expected"),
    [
        ("alice", 2, [("alice", 30, 1), ("bob", 20, 2), ("carol", 20, 2)]),
        ("frank", 2, [("dave", 10, 4), ("erin", 10, 4), ("frank", 5, 6)]),
        ("carol", 1, [("bob", 20, 2), ("carol", 20, 2), ("dave", 10, 4)]),
        ("erin", 0, [("erin", 10, 4)]),
        ("dave", 50, SIX_STANDINGS),
        ("nobody", 3, []),
    ],
)
async def test_neighborhood(
    store: RankingStore, username: str, radius: int, expected: list[tuple[str, int, int]]
) -> None:
    await load(store, SIX_PLAYERS)
    assert standings(await store.neighborhood(GLOBAL, PERIOD, username, radius)) == expected


async def test_scores_near_two_to_the_53_stay_exact(store: RankingStore) -> None:
    big = 10**15
    await load(
        store,
        {"a": big + 3, "b": big + 2, "c": big + 2, "d": big + 1, "max": MAX_EXACT_SCORE - 1},
        (("max", "e1", 1),),
    )
    await load(store, {"min": -MAX_EXACT_SCORE}, board="alltime", period="all")
    assert standings(await store.top(GLOBAL, PERIOD, 10, 0)) == [
        ("max", MAX_EXACT_SCORE - 1, 1),
        ("a", big + 3, 2),
        ("b", big + 2, 3),
        ("c", big + 2, 3),
        ("d", big + 1, 5),
    ]
    [up] = await store.increment([inc("max", 1)])
    assert (up.score, up.rank) == (MAX_EXACT_SCORE, 1)
    [passing] = await store.increment([inc("d", 1)])
    assert (passing.score, passing.rank, passing.previous_score, passing.previous_rank) == (
        big + 2,
        3,
        big + 1,
        5,
    )
    assert await store.player(GLOBAL, PERIOD, "c") == RankedPlayer(
        username="c", score=big + 2, rank=3
    )
    assert standings(await store.neighborhood(GLOBAL, PERIOD, "b", 1)) == [
        ("a", big + 3, 2),
        ("b", big + 2, 3),
        ("c", big + 2, 3),
    ]
    assert await store.totals(GLOBAL, PERIOD) == {
        "max": MAX_EXACT_SCORE,
        "a": big + 3,
        "b": big + 2,
        "c": big + 2,
        "d": big + 2,
    }
    [down] = await store.increment([inc("min", 1, board="alltime", period="all")])
    assert down.score == -MAX_EXACT_SCORE + 1


# Increments


async def test_a_batch_applies_in_order(store: RankingStore) -> None:
    await load(store, {})
    outcomes = await store.increment(
        [inc("alice", 10, "e1"), inc("bob", 5), inc("alice", 3), inc("bob", 20, "e2")]
    )
    assert [
        (o.increment.username, o.applied, o.score, o.rank, o.previous_score, o.previous_rank)
        for o in outcomes
    ] == [
        ("alice", True, 10, 1, None, None),
        ("bob", True, 5, 2, None, None),
        ("alice", True, 13, 1, 10, 1),
        ("bob", True, 25, 1, 5, 2),  # passes alice
    ]
    assert standings(await store.top(GLOBAL, PERIOD, 10, 0)) == [("bob", 25, 1), ("alice", 13, 2)]


async def test_a_batch_spans_boards_and_periods(store: RankingStore) -> None:
    await load(store, {"alice": 1})
    await load(store, {}, board="daily", period="2026-05-01")
    await load(store, {"alice": 100}, board="alltime", period="all")
    outcomes = await store.increment(
        [
            inc("alice", 1, "same-id"),
            inc("alice", 2, "same-id", board="daily", period="2026-05-01"),
            inc("alice", 3, "same-id", board="alltime", period="all"),
        ]
    )
    assert [(o.applied, o.score) for o in outcomes] == [(True, 2), (True, 2), (True, 103)]
    assert await store.totals("daily", "2026-05-01") == {"alice": 2}


async def test_a_tie_is_not_a_pass(store: RankingStore) -> None:
    await load(store, {"alice": 10, "bob": 5})
    [outcome] = await store.increment([inc("bob", 5)])
    assert (outcome.score, outcome.rank, outcome.previous_rank) == (10, 1, 2)
    assert await store.player(GLOBAL, PERIOD, "alice") == RankedPlayer(
        username="alice", score=10, rank=1
    )


async def test_negative_deltas(store: RankingStore) -> None:
    await load(store, {"alice": 5, "bob": 0})
    [down] = await store.increment([inc("alice", -8)])
    assert (down.score, down.rank, down.previous_score, down.previous_rank) == (-3, 2, 5, 1)
    [new] = await store.increment([inc("carol", -1)])
    assert (new.score, new.rank, new.previous_score, new.previous_rank) == (-1, 2, None, None)
    assert standings(await store.top(GLOBAL, PERIOD, 10, 0)) == [
        ("bob", 0, 1),
        ("carol", -1, 2),
        ("alice", -3, 3),
    ]
    [back_to_zero] = await store.increment([inc("carol", 1)])
    assert (back_to_zero.score, back_to_zero.rank) == (0, 1)
    assert await store.totals(GLOBAL, PERIOD) == {"alice": -3, "bob": 0, "carol": 0}


async def test_a_client_event_id_applies_once(store: RankingStore) -> None:
    await load(store, {"zoe": 1})
    [first] = await store.increment([inc("alice", 5, "e1")])
    [again] = await store.increment([inc("alice", 5, "e1")])
    assert first.applied
    assert (again.applied, again.score, again.rank) == (False, 5, 1)
    assert (again.previous_score, again.previous_rank) == (5, 1)
    in_batch = await store.increment([inc("bob", 1, "e2"), inc("bob", 1, "e2")])
    assert [(o.applied, o.score, o.rank) for o in in_batch] == [(True, 1, 2), (False, 1, 2)]
    assert await store.totals(GLOBAL, PERIOD) == {"zoe": 1, "alice": 5, "bob": 1}


async def test_a_seen_event_id_for_a_player_without_a_score(store: RankingStore) -> None:
    # carol's +3 and a later -3 (generated id): no score, but e1 is bound to carol +3.
    await load(store, {"alice": 5, "bob": -1}, (("carol", "e1", 3),))
    [outcome] = await store.increment([inc("carol", 3, "e1")])
    # Nothing applied: carol stands where a score of 0 would, without a previous standing.
    assert (outcome.applied, outcome.score, outcome.rank) == (False, 0, 2)
    assert (outcome.previous_score, outcome.previous_rank) == (None, None)
    assert await store.player(GLOBAL, PERIOD, "carol") is None


async def test_event_ids_are_per_period(store: RankingStore) -> None:
    await load(store, {}, (("alice", "e1", 1),))
    await load(store, {}, period=PROBE_PERIOD)
    [other_period] = await store.increment([inc("bob", 2, "e1", period=PROBE_PERIOD)])
    assert other_period.applied


# Four players that land in four different shards of a 4-shard board (CRC-32 mod 4).
SPREAD = ("ann", "bob", "eve", "ivy")


def test_the_spread_players_are_in_different_shards() -> None:
    assert sorted(SHARDED_BOARDS[0].shard_of(name) for name in SPREAD) == [0, 1, 2, 3]


@pytest.mark.parametrize("batched", [False, True], ids=["one-call-each", "one-batch"])
async def test_an_event_id_reused_for_another_increment_is_refused(
    store: RankingStore, batched: bool
) -> None:
    await load(store, {"zoe": 9})
    [first] = await store.increment([inc("ann", 5, "same-id")])
    assert first.applied
    # Another player (on a sharded board, in another shard) or another delta: refused,
    # alone or in a batch, and nothing of the batch is applied.
    others = [inc(name, 5, "same-id") for name in SPREAD[1:]] + [inc("ann", 6, "same-id")]
    for other in others:
        batch = [inc("zoe", 1), other] if batched else [other]
        with pytest.raises(EventIdReused) as raised:
            await store.increment(batch)
        assert str(raised.value) == "eventId already used for a different increment"
    # Within one batch, on an id never seen before, the second use is refused too.
    with pytest.raises(EventIdReused):
        await store.increment([inc("bob", 1, "fresh"), inc("eve", 1, "fresh")])
    assert await store.totals(GLOBAL, PERIOD) == {"zoe": 9, "ann": 5}
    # The same increment again is a replay: not applied, the player's real standing.
    [replay] = await store.increment([inc("ann", 5, "same-id")])
    assert (replay.applied, replay.score, replay.rank) == (False, 5, 2)
    # "fresh" was bound to nothing: bob may use it now.
    [fresh] = await store.increment([inc("bob", 1, "fresh")])
    assert fresh.applied


async def test_a_reload_keeps_each_event_id_bound_to_its_increment(store: RankingStore) -> None:
    await load(store, {"ann": 5, "bob": 2}, (("ann", "a1", 5), ("bob", "b1", 2)))
    for other in (inc("bob", 5, "a1"), inc("eve", 5, "a1"), inc("ann", 2, "b1")):
        with pytest.raises(EventIdReused):
            await store.increment([other])
    outcomes = await store.increment([inc("ann", 5, "a1"), inc("bob", 2, "b1")])
    assert [(o.applied, o.score) for o in outcomes] == [(False, 5), (False, 2)]
    assert await store.totals(GLOBAL, PERIOD) == {"ann": 5, "bob": 2}


async def test_generated_event_ids_are_never_deduplicated(store: RankingStore) -> None:
    await load(store, {})
    twice = ScoreIncrement(
        board=GLOBAL,
        period=PERIOD,
        username="alice",
        delta=1,
        event_id="~generated",
        client_event_id=False,
    )
    outcomes = await store.increment([twice, twice])
    outcomes += await store.increment([twice])
    assert [o.applied for o in outcomes] == [True, True, True]
    assert await store.totals(GLOBAL, PERIOD) == {"alice": 3}


async def test_out_of_range_applies_nothing(store: RankingStore) -> None:
    await load(store, {"alice": MAX_EXACT_SCORE - 1, "bob": 0, "carol": -MAX_EXACT_SCORE + 1})
    before = await store.totals(GLOBAL, PERIOD)
    for batch in (
        [inc("bob", 5, "e9"), inc("alice", 1), inc("alice", 1)],
        [inc("bob", 5, "e9"), inc("carol", -2)],
        [inc("bob", 5, "e9"), inc("bob", MAX_EXACT_SCORE + 1)],
    ):
        with pytest.raises(ScoreOutOfRange) as raised:
            await store.increment(batch)
        assert (raised.value.username, raised.value.board) == (batch[-1].username, GLOBAL)
        assert await store.totals(GLOBAL, PERIOD) == before
    # e9 was not recorded.
    [outcome] = await store.increment([inc("bob", 5, "e9")])
    assert (outcome.applied, outcome.score) == (True, 5)


async def test_player_count(store: RankingStore) -> None:
    await load(store, {"alice": 1, "bob": 0})
    assert await store.player_count(GLOBAL, PERIOD) == 2
    await store.increment([inc("carol", 1), inc("alice", 1)])
    assert await store.player_count(GLOBAL, PERIOD) == 3


async def test_a_batch_of_a_thousand(store: RankingStore) -> None:
    await load(store, {})
    batch = [inc(f"player{i % 97}", i % 13 - 4, f"event{i}") for i in range(1000)]
    outcomes = await store.increment(batch)
    expected: dict[str, int] = {}
    for increment in batch:
        expected[increment.username] = expected.get(increment.username, 0) + increment.delta
    assert all(outcome.applied for outcome in outcomes)
    assert await store.totals(GLOBAL, PERIOD) == expected
    for player in await store.top(GLOBAL, PERIOD, 100, 0):
        assert player.rank == 1 + sum(score > player.score for score in expected.values())
    replayed = await store.increment(batch)
    assert not any(outcome.applied for outcome in replayed)


# Loading


async def test_load_replaces_the_previous_state(store: RankingStore) -> None:
    await load(store, {"alice": 1, "bob": 2}, (("erin", "e1", 1),))
    await store.increment([inc("carol", 3, "e3")])
    await load(store, {"dave": 4}, (("erin", "e2", 1),))
    assert await store.totals(GLOBAL, PERIOD) == {"dave": 4}
    outcomes = await store.increment([inc("erin", 1, "e1"), inc("erin", 1, "e2")])
    assert [o.applied for o in outcomes] == [True, False]


async def test_an_empty_load(store: RankingStore) -> None:
    await load(store, {"alice": 1}, (("alice", "e1", 1),))
    await load(store, {})
    assert await store.is_loaded(GLOBAL, PERIOD)
    assert await store.totals(GLOBAL, PERIOD) == {}
    assert await store.top(GLOBAL, PERIOD, 10, 0) == []
    assert await store.player_count(GLOBAL, PERIOD) == 0
    [outcome] = await store.increment([inc("alice", 2, "e1")])
    assert (outcome.applied, outcome.score, outcome.rank) == (True, 2, 1)


async def test_a_load_bigger_than_one_write_chunk(store: RankingStore) -> None:
    players = 25_001
    totals = ((f"p{i:05d}", i) for i in range(players))  # a generator: read once
    client_events = ((f"p{i:05d}", f"event{i}", 1) for i in range(12_345))
    await store.load(GLOBAL, PERIOD, totals, client_events)
    assert await store.player_count(GLOBAL, PERIOD) == players
    assert standings(await store.top(GLOBAL, PERIOD, 1, 0)) == [("p25000", 25_000, 1)]
    assert standings(await store.top(GLOBAL, PERIOD, 1, players - 1)) == [("p00000", 0, players)]
    # The same players: a sharded board keeps a player's event ids in that player's shard.
    outcomes = await store.increment([inc("p00000", 1, "event0"), inc("p12344", 1, "event12344")])
    assert [o.applied for o in outcomes] == [False, False]


# Rebuild claims


async def test_one_claim_at_a_time(store: RankingStore) -> None:
    token = await store.claim_rebuild(GLOBAL, PERIOD, 30)
    assert token is not None
    assert await store.claim_rebuild(GLOBAL, PERIOD, 30) is None
    assert await store.claim_rebuild(GLOBAL, PROBE_PERIOD, 30) is not None  # per period
    await store.release_rebuild(GLOBAL, PERIOD, "someone-else")
    assert await store.claim_rebuild(GLOBAL, PERIOD, 30) is None
    await store.release_rebuild(GLOBAL, PERIOD, token)
    assert await store.claim_rebuild(GLOBAL, PERIOD, 30) not in (None, token)


async def test_an_expired_claim_can_be_taken_over(store: RankingStore) -> None:
    stale = await store.claim_rebuild(GLOBAL, PERIOD, 0.05)
    assert stale is not None
    await asyncio.sleep(0.15)
    fresh = await store.claim_rebuild(GLOBAL, PERIOD, 30)
    assert fresh is not None
    await store.release_rebuild(GLOBAL, PERIOD, stale)  # too late: the claim is not ours
    assert await store.claim_rebuild(GLOBAL, PERIOD, 30) is None


# Change feed


async def test_changes_report_applied_increments_of_the_board(store: RankingStore) -> None:
    await load(store, {"alice": 10})
    await load(store, {}, board="alltime", period="all")
    feed = ChangeFeed(store)
    try:
        await feed.ready()
        await store.increment([inc("bob", 15, "e1")])
        assert await feed.next() == ScoreChange(
            board=GLOBAL,
            period=PERIOD,
            username="bob",
            previous_score=None,
            score=15,
            previous_rank=None,
            rank=1,
        )
        await store.increment([inc("bob", 15, "e1")])  # a duplicate: no change
        await store.increment([inc("bob", 1, board="alltime", period="all")])  # another board
        await store.increment([inc("alice", 1), inc("alice", 5)])
        assert await feed.next() == ScoreChange(
            board=GLOBAL,
            period=PERIOD,
            username="alice",
            previous_score=10,
            score=11,
            previous_rank=2,
            rank=2,
        )
        assert await feed.next() == ScoreChange(
            board=GLOBAL,
            period=PERIOD,
            username="alice",
            previous_score=11,
            score=16,
            previous_rank=2,
            rank=1,
        )
    finally:
        await feed.close()


async def test_every_feed_gets_every_change(store: RankingStore) -> None:
    await load(store, {})
    feeds = [ChangeFeed(store), ChangeFeed(store)]
    try:
        for feed in feeds:
            await feed.ready()
        await store.increment([inc("alice", 1)])
        for feed in feeds:
            assert (await feed.next()).username == "alice"
    finally:
        for feed in feeds:
            await feed.close()


def test_the_suite_covers_every_store_method() -> None:
    methods = {
        name for part in RankingStore.__mro__ for name in vars(part) if not name.startswith("_")
    } - set(vars(object))
    exercised = set(NOT_LOADED_OPERATIONS) | {
        "is_loaded",
        "load",
        "claim_rebuild",
        "release_rebuild",
        "changes",
        "ping",
        "close",
        "restore",
        "erase",
    }
    assert methods == exercised, "a new RankingStore method needs contract tests"


async def test_ping(store: RankingStore) -> None:
    await store.ping()


# Moderation (remove, restore, erase)


async def test_remove_takes_the_player_out_and_those_below_move_up(store: RankingStore) -> None:
    await load(store, SIX_PLAYERS)
    assert await store.remove(GLOBAL, PERIOD, "bob") == 20
    assert standings(await store.top(GLOBAL, PERIOD, 10, 0)) == [
        ("alice", 30, 1),
        ("carol", 20, 2),
        ("dave", 10, 3),
        ("erin", 10, 3),
        ("frank", 5, 5),
    ]
    assert await store.player(GLOBAL, PERIOD, "bob") is None
    assert await store.player_count(GLOBAL, PERIOD) == 5
    assert standings(await store.neighborhood(GLOBAL, PERIOD, "dave", 1)) == [
        ("carol", 20, 2),
        ("dave", 10, 3),
        ("erin", 10, 3),
    ]
    assert "bob" not in await store.totals(GLOBAL, PERIOD)


async def test_removing_a_player_without_a_score_changes_nothing(store: RankingStore) -> None:
    await load(store, SIX_PLAYERS)
    assert await store.remove(GLOBAL, PERIOD, "nobody") is None
    assert await store.totals(GLOBAL, PERIOD) == SIX_PLAYERS


async def test_after_a_removal_the_player_starts_afresh(store: RankingStore) -> None:
    await load(store, SIX_PLAYERS)
    await store.remove(GLOBAL, PERIOD, "alice")
    assert await store.remove(GLOBAL, PERIOD, "alice") is None  # twice: nothing left
    (outcome,) = await store.increment([inc("alice", 3)])
    assert (outcome.score, outcome.rank, outcome.previous_score, outcome.previous_rank) == (
        3,
        5,
        None,
        None,
    )


async def test_a_removal_keeps_the_event_ids_bound(store: RankingStore) -> None:
    await load(store, {"alice": 5}, (("alice", "e1", 5),))
    await store.remove(GLOBAL, PERIOD, "alice")
    (replay,) = await store.increment([inc("alice", 5, "e1")])
    assert not replay.applied
    assert await store.player(GLOBAL, PERIOD, "alice") is None


async def test_a_removal_is_published_with_the_standing_it_ended(store: RankingStore) -> None:
    await load(store, SIX_PLAYERS)
    feed = ChangeFeed(store)
    try:
        await feed.ready()
        await store.remove(GLOBAL, PERIOD, "carol")
        assert await feed.next() == ScoreChange(
            board=GLOBAL,
            period=PERIOD,
            username="carol",
            previous_score=20,
            score=20,
            previous_rank=2,
            rank=2,
            removed=True,
        )
        await store.remove(GLOBAL, PERIOD, "carol")  # nothing to remove: nothing published
        await store.increment([inc("frank", 1)])
        assert (await feed.next()).username == "frank"
    finally:
        await feed.close()


async def test_restore_sets_a_total_and_publishes_it(store: RankingStore) -> None:
    await load(store, SIX_PLAYERS)
    await store.remove(GLOBAL, PERIOD, "bob")
    feed = ChangeFeed(store)
    try:
        await feed.ready()
        assert await store.restore(GLOBAL, PERIOD, "bob", 25)
        assert await feed.next() == ScoreChange(
            board=GLOBAL,
            period=PERIOD,
            username="bob",
            previous_score=None,
            score=25,
            previous_rank=None,
            rank=2,
        )
    finally:
        await feed.close()
    assert await store.player(GLOBAL, PERIOD, "bob") == RankedPlayer(
        username="bob", score=25, rank=2
    )
    assert await store.restore(GLOBAL, PERIOD, "alice", 0)
    assert await store.player(GLOBAL, PERIOD, "alice") == RankedPlayer(
        username="alice", score=0, rank=6
    )


async def test_restore_into_a_period_not_loaded_changes_nothing(store: RankingStore) -> None:
    await load(store, {"alice": 1}, period=PROBE_PERIOD)
    assert not await store.restore(GLOBAL, PERIOD, "alice", 5)
    assert not await store.is_loaded(GLOBAL, PERIOD)


async def test_erase_takes_the_player_out_and_forgets_only_its_event_ids(
    store: RankingStore,
) -> None:
    await load(store, {"alice": 5, "bob": 7}, (("alice", "e1", 5), ("bob", "e2", 7)))
    assert await store.erase(GLOBAL, PERIOD, "alice", ["e1", "e2", "unknown"]) == 1
    assert await store.totals(GLOBAL, PERIOD) == {"bob": 7}
    # e1 is free again; e2 still names bob's increment.
    (fresh,) = await store.increment([inc("carol", 2, "e1")])
    assert fresh.applied
    with pytest.raises(EventIdReused):
        await store.increment([inc("alice", 7, "e2")])
    assert await store.erase(GLOBAL, PERIOD, "alice", ["e1"]) == 0  # e1 is carol's now
    (replay,) = await store.increment([inc("carol", 2, "e1")])
    assert not replay.applied


async def test_erase_of_a_period_not_loaded_refuses_nothing(store: RankingStore) -> None:
    assert await store.erase(GLOBAL, PERIOD, "alice", ["e1"]) == 0
