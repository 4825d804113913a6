"""The `RankingStore` contract, run against both implementations: Redis and embedded."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta

import pytest

from store.board_kinds import SortOrder, TieBreak, UpdateRule
from store.boards import Board
from store.embedded_ranking import EmbeddedRankingStore
from store.errors import EventIdReused, RankingNotLoaded, ScoreBeyondCap, ScoreOutOfRange
from store.models import (
    MAX_EXACT_SCORE,
    RankedPlayer,
    RemovedScore,
    ScoreChange,
    ScoreIncrement,
)
from store.ports import RankingStore
from store.redis import RedisRankingStore
from tests.support.board_model import (
    KINDS,
    RULED_BOARDS,
    SHARDED_KINDS,
    PeriodModel,
    kind_id,
)
from tests.support.manual_clock import ManualClock
from tests.support.ranking import (
    BOARDS,
    GLOBAL,
    NOT_LOADED_OPERATIONS,
    PERIOD,
    PROBE_PERIOD,
    SHARDED_BOARDS,
    ChangeFeed,
    inc,
    of_writer,
    top_cached,
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


WINDOW = timedelta(days=1)
"""The idempotency window of every store here (the default one)."""


@pytest.fixture
def clock() -> ManualClock:
    """The stores' wall clock, from the real time on, moved only by the tests."""
    manual = ManualClock()
    manual.now = time.time()
    return manual


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
async def store(
    request: pytest.FixtureRequest, redis_prefix: str, clock: ManualClock
) -> AsyncIterator[RankingStore]:
    """Each implementation in turn; the Redis ones under the test's private key prefix.

    The cluster is a private one of three masters (started once per session). Every store
    reads `clock` (the idempotency window's time; it starts at the real time).
    """
    ranking: RankingStore
    if request.param.startswith("redis"):
        cluster = "cluster" in request.param
        url = request.getfixturevalue("redis_cluster").url() if cluster else REDIS_URL
        ranking = RedisRankingStore.from_url(
            url,
            key_prefix=redis_prefix,
            # The sharded variants spread the boards of every other kind too;
            # on a cluster every one takes the per-slot path.
            boards=SHARDED_BOARDS + SHARDED_KINDS
            if request.param.endswith("sharded")
            else BOARDS + RULED_BOARDS,
            retention=timedelta(days=35),
            cluster=cluster,
            event_id_window=WINDOW,
            clock=clock,
        )
        if request.param == "redis-top-cached":
            # The top() cache must keep the contract: reads after writes included.
            ranking = top_cached(ranking, max_staleness=0.1)
    else:
        ranking = EmbeddedRankingStore(
            boards=BOARDS + RULED_BOARDS,
            event_id_window_seconds=WINDOW.total_seconds(),
            clock=clock,
        )
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


def standings(players: Sequence[RankedPlayer]) -> list[tuple[str, int, int]]:
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


# The idempotency window: an id is remembered at least WINDOW (at most twice as long:
# time buckets, docs/scaling.md), whatever the period, then forgotten.


async def test_an_event_id_replayed_within_the_window_is_not_applied(
    store: RankingStore, clock: ManualClock
) -> None:
    await load(store, {"zoe": 9})
    [first] = await store.increment([inc("ann", 5, "w1")])
    # Just inside the window, wherever the first write fell within its time bucket.
    clock.advance(WINDOW.total_seconds() - 1)
    [replay] = await store.increment([inc("ann", 5, "w1")])
    assert (first.applied, replay.applied, replay.score) == (True, False, 5)
    # Still bound to its increment: another player (another shard when sharded) is refused.
    with pytest.raises(EventIdReused):
        await store.increment([inc("bob", 5, "w1")])
    assert await store.totals(GLOBAL, PERIOD) == {"zoe": 9, "ann": 5}


async def test_an_event_id_after_the_window_is_applied_again(
    store: RankingStore, clock: ManualClock
) -> None:
    await load(store, {"zoe": 9})
    await store.increment([inc("ann", 5, "w1"), inc("bob", 2, "w2")])
    clock.advance(2 * WINDOW.total_seconds() + 1)
    # Forgotten: the same increment applies again, and the id is free for another one
    # (a player in another shard, on a sharded board: its binding is forgotten too).
    outcomes = await store.increment([inc("ann", 5, "w1"), inc("eve", 3, "w2")])
    assert [(o.applied, o.score) for o in outcomes] == [(True, 10), (True, 3)]
    # ...and is remembered again from now on.
    [replay] = await store.increment([inc("ann", 5, "w1")])
    assert not replay.applied
    with pytest.raises(EventIdReused):
        await store.increment([inc("ivy", 3, "w2")])
    assert await store.totals(GLOBAL, PERIOD) == {"zoe": 9, "ann": 10, "bob": 2, "eve": 3}


async def test_a_reload_keeps_the_window(store: RankingStore, clock: ManualClock) -> None:
    # The ids a rebuild restores (those still inside the window) are remembered a window
    # from the load on, then forgotten like any other.
    await load(store, {"ann": 5, "bob": 2}, (("ann", "a1", 5), ("bob", "b1", 2)))
    clock.advance(WINDOW.total_seconds() - 1)
    replays = await store.increment([inc("ann", 5, "a1"), inc("bob", 2, "b1")])
    assert [o.applied for o in replays] == [False, False]
    with pytest.raises(EventIdReused):
        await store.increment([inc("eve", 5, "a1")])
    clock.advance(WINDOW.total_seconds() + 2)
    later = await store.increment([inc("ann", 5, "a1"), inc("eve", 2, "b1")])
    assert [o.applied for o in later] == [True, True]
    assert await store.totals(GLOBAL, PERIOD) == {"ann": 10, "bob": 2, "eve": 2}


async def test_an_event_id_lives_the_window_on_a_board_that_never_resets(
    store: RankingStore, clock: ManualClock
) -> None:
    # Whatever the period's length: here one that never ends.
    board, period = "alltime", "all"
    await load(store, {}, board=board, period=period)
    [first] = await store.increment([inc("ann", 5, "n1", board=board, period=period)])
    clock.advance(2 * WINDOW.total_seconds() + 1)
    [again] = await store.increment([inc("ann", 5, "n1", board=board, period=period)])
    assert (first.applied, again.applied, again.score) == (True, True, 10)


# Idempotency per writer: a writer's call whose sequence is not above the last one it had
# applied in a board period is a replay (docs/reliability.md, "Idempotency per writer").


async def test_a_writers_sequence_applies_once(store: RankingStore) -> None:
    await load(store, {"zoe": 9})
    first = await store.increment(of_writer("gs-1", 1, inc("ann", 5), inc("bob", 2)))
    assert [(o.applied, o.score, o.rank) for o in first] == [(True, 5, 2), (True, 2, 3)]
    # The same call again (a retry): nothing applied, each player's standing now.
    again = await store.increment(of_writer("gs-1", 1, inc("ann", 5), inc("bob", 2)))
    assert [(o.applied, o.score, o.rank) for o in again] == [(False, 5, 2), (False, 2, 3)]
    assert [(o.previous_score, o.previous_rank) for o in again] == [(5, 2), (2, 3)]
    # An older sequence is refused the same way; a player without a score stands where 0 would.
    [older] = await store.increment(of_writer("gs-1", 0, inc("cy", 7)))
    assert (older.applied, older.score, older.rank, older.previous_score) == (False, 0, 4, None)
    # Gaps are fine; then the numbers below the new last one are replays.
    [gap] = await store.increment(of_writer("gs-1", 5, inc("ann", 1)))
    [skipped] = await store.increment(of_writer("gs-1", 4, inc("ann", 1)))
    assert (gap.applied, skipped.applied, skipped.score) == (True, False, 6)
    # Sequences are per writer: another writer starts from nothing.
    [other] = await store.increment(of_writer("gs-2", 0, inc("ann", 1)))
    assert other.applied
    assert await store.totals(GLOBAL, PERIOD) == {"zoe": 9, "ann": 7, "bob": 2}


async def test_a_replayed_call_applies_none_of_its_writes(
    store: RankingStore, request: pytest.FixtureRequest
) -> None:
    await load(store, {"zoe": 9})
    await load(store, {}, period=PROBE_PERIOD)
    # Across shards (on sharded boards) and across periods: recorded in every period touched.
    call = of_writer(
        "gs", 3, *(inc(name, 1) for name in SPREAD), inc("ann", 1, period=PROBE_PERIOD)
    )
    assert all(o.applied for o in await store.increment(call))
    assert not any(o.applied for o in await store.increment(call))
    assert await store.totals(GLOBAL, PERIOD) == {"zoe": 9} | dict.fromkeys(SPREAD, 1)
    # A call with sequence 7 where one of its periods already had 7: a replay where one script
    # call holds the whole call (one Redis, embedded). On a cluster each slot decides for its
    # own writes (so that a retry after a part-way failure applies the missing part).
    await store.increment(of_writer("gs", 7, inc("ann", 1)))
    mixed = await store.increment(
        of_writer("gs", 7, inc("ann", 1), inc("bob", 1, period=PROBE_PERIOD))
    )
    on_cluster = "cluster" in request.node.callspec.params["store"]
    assert [o.applied for o in mixed] == [False, on_cluster]
    assert await store.totals(GLOBAL, PERIOD) == {"zoe": 9, "ann": 2} | dict.fromkeys(SPREAD[1:], 1)


async def test_calls_of_one_batch_are_checked_in_order(store: RankingStore) -> None:
    # Calls merged into one script call (coalescing.py) keep their own answers: the second
    # of two calls with one sequence is a replay, a later sequence applies, an older one not.
    await load(store, {})
    outcomes = await store.increment(
        of_writer("gs", 1, inc("ann", 1), inc("bob", 1), call=1)
        + of_writer("gs", 1, inc("ann", 1), inc("bob", 1), call=2)
        + of_writer("gs", 2, inc("ann", 10), call=3)
        + of_writer("gs", 1, inc("cy", 1), call=4)
        + of_writer("other", 1, inc("cy", 2), call=5)
    )
    assert [o.applied for o in outcomes] == [True, True, False, False, True, False, True]
    assert await store.totals(GLOBAL, PERIOD) == {"ann": 11, "bob": 1, "cy": 2}


async def test_event_ids_and_writers_both_apply(store: RankingStore) -> None:
    await load(store, {})
    await store.increment(of_writer("gs", 1, inc("ann", 5, "e1")))
    # A new sequence: its write of a seen eventId is still a replay, the rest applies.
    later = await store.increment(of_writer("gs", 2, inc("ann", 5, "e1"), inc("bob", 1, "e2")))
    assert [o.applied for o in later] == [False, True]
    # A replayed sequence: nothing applies, whatever the eventIds (even an unseen one).
    replay = await store.increment(of_writer("gs", 2, inc("cy", 1, "e3")))
    assert [o.applied for o in replay] == [False]
    [fresh] = await store.increment([inc("cy", 1, "e3")])
    assert fresh.applied
    assert await store.totals(GLOBAL, PERIOD) == {"ann": 5, "bob": 1, "cy": 1}


async def test_a_reload_restores_each_writers_last_sequence(store: RankingStore) -> None:
    await store.load(GLOBAL, PERIOD, [("ann", 5)], (), writers=[("gs", 4), ("other", 0)])
    replays = await store.increment(of_writer("gs", 4, inc("ann", 1), inc("bob", 1)))
    replays += await store.increment(of_writer("other", 0, inc("ann", 1)))
    assert not any(o.applied for o in replays)
    [later] = await store.increment(of_writer("gs", 5, inc("bob", 1)))
    assert later.applied
    # A load replaces them: a writer it does not name starts from nothing again.
    await store.load(GLOBAL, PERIOD, [("ann", 5)], ())
    [fresh] = await store.increment(of_writer("gs", 1, inc("ann", 1)))
    assert fresh.applied
    assert await store.totals(GLOBAL, PERIOD) == {"ann": 6}


@pytest.mark.parametrize("board", ["best-asc-earliest", "latest-desc-shared"])
async def test_a_writers_sequence_replays_on_every_rule(store: RankingStore, board: str) -> None:
    await load(store, {}, board=board)
    [first] = await store.increment(of_writer("gs", 1, inc("ana", 10, board=board)))
    [again] = await store.increment(of_writer("gs", 1, inc("ana", 9, board=board)))
    assert first.applied
    assert (again.applied, again.score, again.rank, again.instant) == (False, 10, 1, None)
    [later] = await store.increment(of_writer("gs", 2, inc("ana", 8, board=board)))
    assert later.applied
    # Applied: the latest score, and the best one on an ASC board.
    assert await store.totals(board, PERIOD) == {"ana": 8}


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


async def test_a_feed_that_holds_nothing_gets_every_change_while_the_board_is_held(
    store: RankingStore,
) -> None:
    await load(store, {"alice": 10})
    # A consumer that stays subscribed holds the board only while it needs the changes
    # (the live subscriptions: a backend may publish nothing for a board nobody holds).
    await store.watch(GLOBAL)
    feed = ChangeFeed(store, watch=False)
    try:
        await feed.ready()
        # The writer did not ask for ranks: the published change has them all the same.
        (outcome,) = await store.increment([inc("bob", 15)], ranks=False)
        assert outcome.score == 15
        assert await feed.next() == ScoreChange(
            board=GLOBAL,
            period=PERIOD,
            username="bob",
            previous_score=None,
            score=15,
            previous_rank=None,
            rank=1,
        )
        await store.increment([inc("alice", 10)], ranks=False)
        assert await feed.next() == ScoreChange(
            board=GLOBAL,
            period=PERIOD,
            username="alice",
            previous_score=10,
            score=20,
            previous_rank=2,
            rank=1,
        )
    finally:
        await feed.close()
        store.unwatch(GLOBAL)


@pytest.mark.parametrize("held", [False, True], ids=["unwatched", "watched"])
async def test_increments_without_ranks_apply_and_answer_the_same_but_the_ranks(
    store: RankingStore, held: bool
) -> None:
    # The same calls on two periods holding the same players: one asks for ranks, one not.
    await load(store, SIX_PLAYERS)
    await load(store, SIX_PLAYERS, period=PROBE_PERIOD)
    if held:
        await store.watch(GLOBAL)
    calls = [
        [("bob", 15, "e1"), ("zed", 3, None), ("bob", 1, "e2")],
        [("bob", 15, "e1"), ("frank", 40, None)],  # a replay of e1: not applied
        [("zed", -3, None), ("carol", 0, "e3")],
    ]
    try:
        for call in calls:
            ranked = await store.increment(
                [inc(name, delta, event) for name, delta, event in call], ranks=True
            )
            unranked = await store.increment(
                [inc(name, delta, event, period=PROBE_PERIOD) for name, delta, event in call],
                ranks=False,
            )
            for with_ranks, without in zip(ranked, unranked, strict=True):
                assert (without.applied, without.score, without.previous_score) == (
                    with_ranks.applied,
                    with_ranks.score,
                    with_ranks.previous_score,
                )
                # Not asked for: the true rank, or 0 (not computed).
                assert without.rank in (with_ranks.rank, 0)
                assert without.previous_rank in (with_ranks.previous_rank, 0)
        assert standings(await store.top(GLOBAL, PROBE_PERIOD, 10, 0)) == standings(
            await store.top(GLOBAL, PERIOD, 10, 0)
        )
    finally:
        if held:
            store.unwatch(GLOBAL)


# Boards of every kind (docs/boards.md): rule x order x tie-break against a plain model

KIND_WRITES = [
    [("ana", 50)],
    [("bo", 40), ("cy", 50)],
    [("ana", 45), ("bo", 50), ("ana", 45)],
    [("di", -5), ("cy", 50), ("ana", 60)],
    [("ed", 50)],
    [("bo", -5), ("di", 50), ("fay", 0)],
]
"""Calls of (username, value): equal scores reached at different times, better, worse and
equal submissions, negative values and zero."""

BY_ID = {board.id: board for board in RULED_BOARDS}


def served_board(request: pytest.FixtureRequest, board_id: str) -> Board:
    """The board as the store under test serves it (sharded in the sharded variants)."""
    sharded = str(request.node.callspec.params["store"]).endswith("sharded")
    return next(b for b in SHARDED_KINDS if b.id == board_id) if sharded else BY_ID[board_id]


@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind_id(*kind))
async def test_every_kind_of_board_against_the_model(
    store: RankingStore,
    kind: tuple[UpdateRule, SortOrder, TieBreak],
    request: pytest.FixtureRequest,
) -> None:
    board = kind_id(*kind)
    config = BY_ID[board]
    model = PeriodModel(config)
    await load(store, {}, board=board)
    last_instants: dict[int, int] = {}
    for call in KIND_WRITES:
        outcomes = await store.increment([inc(name, value, board=board) for name, value in call])
        for (username, value), outcome in zip(call, outcomes, strict=True):
            previous = model.kept.get(username)
            previous_rank = None if previous is None else model.rank(username)
            if config.keeps_instants:
                # Strictly increasing per ranking key (per shard, on a sharded board).
                shard = served_board(request, board).shard_of(username)
                assert outcome.instant is not None
                assert outcome.instant > last_instants.get(shard, 0)
                last_instants[shard] = outcome.instant
            else:
                assert outcome.instant is None
            score, changed = model.write(username, value, outcome.instant)
            assert (
                outcome.score,
                outcome.rank,
                outcome.previous_score,
                outcome.previous_rank,
                outcome.applied,
                outcome.changed,
            ) == (score, model.rank(username), previous, previous_rank, True, changed), username
    expected = model.standings()
    assert await store.top(board, PERIOD, 100, 0) == expected
    assert await store.top(board, PERIOD, 2, 1) == expected[1:3]
    for player in expected:
        assert await store.player(board, PERIOD, player.username) == player
    assert await store.neighborhood(board, PERIOD, expected[2].username, 1) == expected[1:4]
    assert await store.player_count(board, PERIOD) == len(expected)
    assert await store.totals(board, PERIOD) == model.kept
    await check_player_reads(store, board, expected)
    # A load of the kept scores and instants (what a rebuild does) ranks the same, and its
    # clock keeps later writes later.
    await store.load(
        board,
        PERIOD,
        model.kept.items(),
        [],
        instants=dict(model.reached),
        clock=max(last_instants.values(), default=None),
    )
    assert await store.top(board, PERIOD, 100, 0) == expected
    [late] = await store.increment([inc("gus", 50, board=board)])
    model.write("gus", 50, late.instant)
    assert late.rank == model.rank("gus")
    assert await store.top(board, PERIOD, 100, 0) == model.standings()


@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind_id(*kind))
async def test_moderation_on_every_kind_of_board(
    store: RankingStore,
    kind: tuple[UpdateRule, SortOrder, TieBreak],
    request: pytest.FixtureRequest,
) -> None:
    """remove / restore / erase on every rule x order x tie-break, against the model: the
    player leaves with the rank it had, those behind move up, a later write starts afresh,
    a restore puts back the kept score and instant (what a rebuild would give)."""
    board = kind_id(*kind)
    config = BY_ID[board]
    model = PeriodModel(config)
    await load(store, {}, board=board)
    last = 0
    for call in KIND_WRITES:
        outcomes = await store.increment([inc(name, value, board=board) for name, value in call])
        for (username, value), outcome in zip(call, outcomes, strict=True):
            model.write(username, value, outcome.instant)
            last = max(last, outcome.instant or 0)
    # "bo" is tied on 50 with others on most kinds: EARLIEST ranks, shared ranks.
    feed = ChangeFeed(store, board)
    try:
        await feed.ready()
        rank, score = model.rank("bo"), model.kept["bo"]
        removed = await store.remove(board, PERIOD, "bo")
        assert removed is not None
        assert removed.score == score
        if config.keeps_instants:
            # After every write of its shard: a replay puts the removal after them.
            assert removed.instant is not None
            if not served_board(request, board).shards > 1:
                assert removed.instant > last
        else:
            assert removed.instant is None
        change = await feed.next()
        assert (change.username, change.score, change.rank, change.removed) == (
            "bo",
            score,
            rank,
            True,
        )
    finally:
        await feed.close()
    model.remove("bo")
    assert await store.remove(board, PERIOD, "bo") is None
    assert await store.top(board, PERIOD, 100, 0) == model.standings()
    assert await store.player(board, PERIOD, "bo") is None
    assert await store.player_count(board, PERIOD) == len(model.kept)
    assert await store.totals(board, PERIOD) == model.kept
    await check_player_reads(store, board, model.standings())
    # A later write starts afresh, whatever the rule: a worse BEST score counts.
    [fresh] = await store.increment([inc("bo", -7, board=board)])
    model.write("bo", -7, fresh.instant)
    assert (fresh.score, fresh.previous_score, fresh.rank) == (-7, None, model.rank("bo"))
    assert await store.top(board, PERIOD, 100, 0) == model.standings()
    # A restore (unban) gives back a kept score reached at an instant: "cy" back as it was.
    cy_score, cy_instant = model.kept["cy"], model.reached["cy"]
    assert await store.remove(board, PERIOD, "cy") is not None
    model.remove("cy")
    feed = ChangeFeed(store, board)
    try:
        await feed.ready()
        assert await store.restore(board, PERIOD, "cy", cy_score, cy_instant)
        model.kept["cy"], model.reached["cy"] = cy_score, cy_instant
        change = await feed.next()
        # Published with its board-wide rank (every shard counted on a sharded board).
        assert (change.username, change.score, change.previous_score, change.rank) == (
            "cy",
            cy_score,
            None,
            model.rank("cy"),
        )
    finally:
        await feed.close()
    assert await store.top(board, PERIOD, 100, 0) == model.standings()
    assert await store.player(board, PERIOD, "cy") == next(
        player for player in model.standings() if player.username == "cy"
    )
    # An erasure takes the player out and leaves nothing of it behind.
    assert await store.erase(board, PERIOD, "cy", []) == 1
    model.remove("cy")
    assert await store.top(board, PERIOD, 100, 0) == model.standings()
    assert await store.erase(board, PERIOD, "cy", []) == 0


@pytest.mark.parametrize("board", ["best-asc-earliest", "latest-desc-shared"])
async def test_an_event_id_replays_on_every_rule(store: RankingStore, board: str) -> None:
    await load(store, {}, board=board)
    [first] = await store.increment([inc("ana", 10, "e1", board=board)])
    [again] = await store.increment([inc("ana", 10, "e1", board=board)])
    assert (again.applied, again.score, again.rank, again.instant) == (False, 10, 1, None)
    with pytest.raises(EventIdReused):
        await store.increment([inc("bo", 3, board=board), inc("ana", 11, "e1", board=board)])
    assert await store.totals(board, PERIOD) == {"ana": 10}
    assert first.instant is not None
    await store.load(
        board,
        PERIOD,
        [("ana", 10)],
        [("ana", "e1", 10)],
        instants={"ana": first.instant},
        clock=first.instant,
    )
    [replayed] = await store.increment([inc("ana", 10, "e1", board=board)])
    assert not replayed.applied


async def test_caps_refuse_the_whole_batch(store: RankingStore) -> None:
    await load(store, {"alice": 1})
    await load(store, {"ana": 90}, board="capped-total")
    await load(store, {}, board="capped-best")
    refused = [
        [inc("bo", 5, board="capped-total"), inc("ana", 11, board="capped-total")],
        [inc("bo", -11, board="capped-total")],
        [inc("bo", 5, board="capped-best"), inc("ana", 1001, board="capped-best")],
        [inc("ana", -1, board="capped-best")],
        # A plain board's increments in the same batch are refused with it.
        [inc("alice", 1), inc("ana", 5, board="capped-total"), inc("ana", 6, board="capped-total")],
    ]
    for batch in refused:
        with pytest.raises(ScoreBeyondCap):
            await store.increment(batch)
    assert await store.totals(GLOBAL, PERIOD) == {"alice": 1}
    assert await store.totals("capped-total", PERIOD) == {"ana": 90}
    assert await store.totals("capped-best", PERIOD) == {}
    # Up to the caps, inclusive.
    outcomes = await store.increment(
        [
            inc("ana", 10, board="capped-total"),
            inc("bo", -10, board="capped-total"),
            inc("ana", 1000, board="capped-best"),
            inc("bo", 0, board="capped-best"),
        ]
    )
    assert [outcome.score for outcome in outcomes] == [100, -10, 1000, 0]


async def test_a_worse_submission_publishes_nothing(store: RankingStore) -> None:
    board = "best-desc-shared"
    await load(store, {}, board=board)
    feed = ChangeFeed(store, board)
    try:
        await feed.ready()
        await store.increment([inc("ana", 10, board=board)])
        [worse] = await store.increment([inc("ana", 5, board=board)])
        assert (worse.applied, worse.changed, worse.score) == (True, False, 10)
        await store.increment([inc("ana", 12, board=board)])
        changes = [await feed.next(), await feed.next()]
        assert [(change.previous_score, change.score) for change in changes] == [
            (None, 10),
            (10, 12),
        ]
    finally:
        await feed.close()


async def test_equal_scores_at_the_same_moment_get_unique_ranks(
    store: RankingStore, request: pytest.FixtureRequest
) -> None:
    board = "increment-desc-earliest"
    await load(store, {}, board=board)
    # Two writers at once: on one Redis, the same script call or the same microsecond.
    first, second = await asyncio.gather(
        store.increment([inc("zed", 7, board=board)]),
        store.increment([inc("amy", 7, board=board)]),
    )
    instants = {first[0].increment.username: first[0].instant}
    instants[second[0].increment.username] = second[0].instant
    assert None not in instants.values()
    if len({served_board(request, board).shard_of(name) for name in instants}) == 1:
        # One ranking key, one clock: never the same instant.
        assert len(set(instants.values())) == 2
    # Two shards keep two clocks: the same microsecond then ranks by username.
    earlier, later = sorted(instants, key=lambda name: (instants[name] or 0, name))
    assert standings(await store.top(board, PERIOD, 10, 0)) == [(earlier, 7, 1), (later, 7, 2)]
    assert {first[0].rank, second[0].rank} == {1, 2}


@pytest.mark.parametrize("board", ["best-desc-earliest", "latest-asc-earliest"])
async def test_earliest_ties_across_shards_rank_by_instant_then_username(
    store: RankingStore, board: str
) -> None:
    # SPREAD lands in four shards of a sharded board; bob and eve reached 7 in the same
    # microsecond (possible only across shards, whose clocks are their own).
    reached = {"ivy": 30, "ann": 20, "bob": 10, "eve": 10, "cy": 40}
    scores = {"ivy": 7, "ann": 7, "bob": 7, "eve": 7, "cy": 9}
    await store.load(board, PERIOD, scores.items(), [], instants=reached, clock=40)
    model = PeriodModel(BY_ID[board])
    for name in sorted(reached, key=lambda name: reached[name]):
        model.write(name, scores[name], reached[name])
    expected = model.standings()
    assert [player.username for player in expected if player.score == 7] == [
        "bob",
        "eve",
        "ann",
        "ivy",
    ]
    assert [player.rank for player in expected] == [1, 2, 3, 4, 5]
    assert await store.top(board, PERIOD, 10, 0) == expected
    assert await store.top(board, PERIOD, 2, 2) == expected[2:4]
    for player in expected:
        assert await store.player(board, PERIOD, player.username) == player
    assert await store.players(board, PERIOD, ["ivy", "eve", "nobody"]) == [
        p for p in expected if p.username in ("eve", "ivy")
    ]
    names = [player.username for player in expected]
    for at, name in enumerate(names):
        window = expected[max(0, at - 1) : at + 2]
        assert await store.neighborhood(board, PERIOD, name, 1) == window
    # A later equal score (another shard's clock is ahead) goes after every earlier one.
    [late] = await store.increment([inc("dee", 7, board=board)])
    model.write("dee", 7, late.instant)
    assert late.rank == model.rank("dee")
    assert await store.top(board, PERIOD, 10, 0) == model.standings()
    # A better score moves ann ahead of everyone at 7, with a fresh instant.
    previous = model.rank("ann")
    [better] = await store.increment(
        [inc("ann", 8 if board.startswith("best-desc") else 6, board=board)]
    )
    model.write("ann", better.score, better.instant)
    assert (better.rank, better.previous_rank) == (model.rank("ann"), previous)
    assert await store.top(board, PERIOD, 10, 0) == model.standings()


async def test_a_clock_ahead_of_time_still_orders_later_writes_later(store: RankingStore) -> None:
    board = "best-asc-earliest"
    future = 4_102_444_800_000_000  # 2100-01-01 in microseconds: a clock that stepped back
    await store.load(board, PERIOD, [("ana", 30)], [], instants={"ana": future}, clock=future)
    [bo] = await store.increment([inc("bo", 30, board=board)])
    assert bo.instant == future + 1
    assert standings(await store.top(board, PERIOD, 10, 0)) == [("ana", 30, 1), ("bo", 30, 2)]


@pytest.mark.parametrize("board", ["latest-desc-earliest", "latest-asc-earliest"])
async def test_earliest_scores_near_two_to_the_53_stay_exact(
    store: RankingStore, board: str
) -> None:
    await load(store, {}, board=board)
    writes = [
        ("ana", MAX_EXACT_SCORE - 1),
        ("bo", MAX_EXACT_SCORE),
        ("cy", MAX_EXACT_SCORE - 1),
        ("di", -MAX_EXACT_SCORE),
        ("ed", -(MAX_EXACT_SCORE - 1)),
        ("fay", MAX_EXACT_SCORE - 1),
    ]
    model = PeriodModel(BY_ID[board])
    for username, score in writes:
        [outcome] = await store.increment([inc(username, score, board=board)])
        model.write(username, score, outcome.instant)
        assert outcome.rank == model.rank(username)
    assert await store.top(board, PERIOD, 10, 0) == model.standings()
    with pytest.raises(ScoreOutOfRange):
        await store.increment([inc("gus", MAX_EXACT_SCORE + 1, board=board)])


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
        "watch",
        "unwatch",
    }
    assert methods == exercised, "a new RankingStore method needs contract tests"


async def test_ping(store: RankingStore) -> None:
    await store.ping()


# Moderation (remove, restore, erase)


async def test_remove_takes_the_player_out_and_those_below_move_up(store: RankingStore) -> None:
    await load(store, SIX_PLAYERS)
    assert await store.remove(GLOBAL, PERIOD, "bob") == RemovedScore(score=20)
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
        6,
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


# Player reads (#14): topPercent, named players, filled neighbourhoods, paging


def counts(players: list[RankedPlayer]) -> list[tuple[str, int, float]]:
    """(username, player count, top percent) of each player."""
    return [(player.username, player.player_count, player.top_percent) for player in players]


async def test_every_read_carries_the_period_player_count(store: RankingStore) -> None:
    await load(store, SIX_PLAYERS)
    expected = [(name, 6, 100 * rank / 6) for name, _, rank in SIX_STANDINGS]
    assert counts(await store.top(GLOBAL, PERIOD, 10, 0)) == expected
    assert counts(await store.top(GLOBAL, PERIOD, 2, 3)) == expected[3:5]
    assert counts(await store.neighborhood(GLOBAL, PERIOD, "carol", 1)) == expected[1:4]
    for name, _, rank in SIX_STANDINGS:
        player = await store.player(GLOBAL, PERIOD, name)
        assert player is not None
        assert (player.player_count, player.top_percent) == (6, 100 * rank / 6)
    await store.increment([inc("newcomer", 1)])
    # A window not read before: the top cache keeps a count within its staleness bound only.
    assert counts(await store.top(GLOBAL, PERIOD, 1, 0))[0][1] in (6, 7)
    assert counts(await store.top(GLOBAL, PERIOD, 3, 0))[0] == ("alice", 7, 100 / 7)
    newcomer = await store.player(GLOBAL, PERIOD, "newcomer")
    assert newcomer is not None
    assert (newcomer.rank, newcomer.player_count, newcomer.top_percent) == (7, 7, 100.0)


@pytest.mark.parametrize(
    ("usernames", "expected"),
    [
        (["frank", "nobody", "bob", "alice"], [("alice", 30, 1), ("bob", 20, 2), ("frank", 5, 6)]),
        (["erin", "dave", "carol"], [("carol", 20, 2), ("dave", 10, 4), ("erin", 10, 4)]),
        (["nobody", "ghost"], []),
        ([name for name in SIX_PLAYERS][::-1], SIX_STANDINGS),
    ],
)
async def test_players_are_the_named_ones_best_first(
    store: RankingStore, usernames: list[str], expected: list[tuple[str, int, int]]
) -> None:
    await load(store, SIX_PLAYERS)
    found = await store.players(GLOBAL, PERIOD, usernames)
    assert standings(found) == expected
    assert {player.player_count for player in found} <= {6}


async def test_players_of_a_hundred_names_across_shards(store: RankingStore) -> None:
    totals = {f"p{index:03}": index % 17 for index in range(300)}
    await load(store, totals)
    named = [f"p{index:03}" for index in range(0, 300, 3)] + ["nobody"]
    found = await store.players(GLOBAL, PERIOD, named[:100])
    everyone = await store.top(GLOBAL, PERIOD, 300, 0)
    expected = [player for player in everyone if player.username in set(named[:100])]
    assert standings(found) == standings(expected)
    assert {player.player_count for player in found} == {300}


# (radius, username) -> the filled window, on SIX_PLAYERS.
FILLED = [
    ("alice", 1, SIX_STANDINGS[0:3]),
    ("alice", 2, SIX_STANDINGS[0:5]),
    ("bob", 2, SIX_STANDINGS[0:5]),
    ("carol", 2, SIX_STANDINGS[0:5]),
    ("dave", 2, SIX_STANDINGS[1:6]),
    ("frank", 2, SIX_STANDINGS[1:6]),
    ("frank", 1, SIX_STANDINGS[3:6]),
    ("erin", 1, SIX_STANDINGS[3:6]),
    ("erin", 0, SIX_STANDINGS[4:5]),
    ("carol", 3, SIX_STANDINGS),  # fewer players than 2r+1: everyone
    ("nobody", 2, []),
]


@pytest.mark.parametrize(("username", "radius", "expected"), FILLED)
async def test_a_filled_neighborhood_shifts_at_the_ends(
    store: RankingStore, username: str, radius: int, expected: list[tuple[str, int, int]]
) -> None:
    await load(store, SIX_PLAYERS)
    found = await store.neighborhood(GLOBAL, PERIOD, username, radius, fill=True)
    assert standings(found) == expected
    # Unfilled, the same call keeps today's window.
    window = await store.neighborhood(GLOBAL, PERIOD, username, radius)
    assert standings(window) == standings(
        await store.neighborhood(GLOBAL, PERIOD, username, radius, fill=False)
    )


async def test_a_filled_neighborhood_on_a_larger_board(store: RankingStore) -> None:
    totals = {f"p{index:02}": 100 - index // 2 for index in range(40)}  # pairs tie
    await load(store, totals)
    everyone = standings(await store.top(GLOBAL, PERIOD, 40, 0))
    for position in range(40):
        name = everyone[position][0]
        for radius in (0, 1, 3, 7):
            start = max(0, min(position - radius, 40 - (2 * radius + 1)))
            filled = await store.neighborhood(GLOBAL, PERIOD, name, radius, fill=True)
            assert standings(filled) == everyone[start : start + 2 * radius + 1], (name, radius)


async def check_player_reads(store: RankingStore, board: str, expected: list[RankedPlayer]) -> None:
    """The player reads of #14 on a board of any kind agree with its standings."""
    names = [player.username for player in expected]
    assert await store.players(board, PERIOD, [*reversed(names), "nobody"]) == expected
    for first in (1, 2, 5):
        assert await read_all_pages(store, first, board) == expected, first
    count = len(expected)
    assert await store.neighborhood(board, PERIOD, names[0], 1, fill=True) == expected[:3]
    assert await store.neighborhood(board, PERIOD, names[-1], 1, fill=True) == expected[-3:]
    for player in await store.top(board, PERIOD, 100, 0):
        assert player.top_percent == 100 * player.rank / count


async def read_all_pages(
    store: RankingStore, first: int, board: str = GLOBAL
) -> list[RankedPlayer]:
    """Every page of the period in turn, following the last key of each."""
    seen: list[RankedPlayer] = []
    after = None
    while True:
        page = await store.page(board, PERIOD, first, after)
        seen += page.players
        assert len(page.players) == len(page.keys)
        if not page.has_next:
            return seen
        assert len(page.players) == first
        after = page.keys[-1]


@pytest.mark.parametrize("first", [1, 2, 4, 6, 10])
async def test_pages_follow_each_other_exactly(store: RankingStore, first: int) -> None:
    await load(store, SIX_PLAYERS)
    pages = await read_all_pages(store, first)
    assert standings(pages) == SIX_STANDINGS
    assert {player.player_count for player in pages} == {6}
    assert (await store.page(GLOBAL, PERIOD, first, None)).total == 6


async def test_an_empty_period_has_one_empty_page(store: RankingStore) -> None:
    await load(store, {})
    page = await store.page(GLOBAL, PERIOD, 10, None)
    assert (page.players, page.keys, page.total, page.has_next) == ((), (), 0, False)


async def test_a_page_continues_after_a_key_whose_player_moved_or_left(
    store: RankingStore,
) -> None:
    await load(store, SIX_PLAYERS)
    first = await store.page(GLOBAL, PERIOD, 2, None)
    assert standings(first.players) == SIX_STANDINGS[:2]
    # bob (the last key) scores: the next page starts after where bob was, ranks are fresh.
    await store.increment([inc("bob", 100)])
    rest = await store.page(GLOBAL, PERIOD, 10, first.keys[-1])
    assert standings(rest.players) == [
        ("carol", 20, 3),
        ("dave", 10, 4),
        ("erin", 10, 4),
        ("frank", 5, 6),
    ]
    # A key between two players, of a member not in the ranking at all.
    between = await store.page(GLOBAL, PERIOD, 10, (first.keys[-1][0], "bz"))
    assert standings(between.players)[0] == ("carol", 20, 3)


async def test_pages_of_a_larger_board_with_ties(store: RankingStore) -> None:
    totals = {f"p{index:03}": index % 7 for index in range(250)}
    await load(store, totals)
    everyone = standings(await store.top(GLOBAL, PERIOD, 250, 0))
    for first in (1, 7, 100):
        assert standings(await read_all_pages(store, first)) == everyone
