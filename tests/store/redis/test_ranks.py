"""The rank arithmetic of sharded boards, without Redis: against a direct simulation of
what one unsharded script call reports."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from store.models import IncrementOutcome, RankedPlayer, ScoreIncrement
from store.redis.ranks import (
    order,
    rank_by_position,
    replay_ranks,
    replay_unique_ranks,
    scores_of,
    unique_keys,
)
from store.tiebreak import encode_instant

pytestmark = pytest.mark.unit

Step = tuple[str, int, str | None]
"""One increment: username, delta, client event id (None = generated, never a repeat)."""


def simulate(board: dict[str, int], steps: list[Step]) -> list[IncrementOutcome]:
    """Outcomes as increment.lua reports them on one sorted set, applied in order."""
    seen: set[str] = set()

    def rank_of(score: int) -> int:
        return 1 + sum(1 for other in board.values() if other > score)

    outcomes = []
    for number, (username, delta, event_id) in enumerate(steps):
        increment = ScoreIncrement(
            board="global",
            period="2026-05",
            username=username,
            delta=delta,
            event_id=event_id or f"~{number}",
            client_event_id=event_id is not None,
        )
        old = board.get(username)
        if event_id is not None and event_id in seen:
            rank = rank_of(old or 0)
            outcomes.append(
                IncrementOutcome(
                    increment=increment,
                    score=old or 0,
                    rank=rank,
                    applied=False,
                    previous_score=old,
                    previous_rank=None if old is None else rank,
                )
            )
            continue
        if event_id is not None:
            seen.add(event_id)
        previous_rank = None if old is None else rank_of(old)
        board[username] = (old or 0) + delta
        outcomes.append(
            IncrementOutcome(
                increment=increment,
                score=board[username],
                rank=rank_of(board[username]),
                applied=True,
                previous_score=old,
                previous_rank=previous_rank,
            )
        )
    return outcomes


def higher_counts(board: dict[str, int], scores: list[int]) -> dict[int, int]:
    """How many players of `board` have a strictly higher score than each of `scores`."""
    return {score: sum(1 for other in board.values() if other > score) for score in scores}


def scrambled(outcome: IncrementOutcome) -> IncrementOutcome:
    """The outcome with the ranks a single shard would report (wrong board-wide)."""
    return dataclasses.replace(outcome, rank=-1, previous_rank=None)


NAMES = st.sampled_from(["alice", "bob", "carol", "dave", "erin"])


@given(
    initial=st.dictionaries(NAMES, st.integers(-5, 5)),
    steps=st.lists(
        st.tuples(NAMES, st.integers(-5, 5), st.sampled_from([None, None, "e1", "e2"])),
        min_size=1,
        max_size=12,
    ),
)
def test_replayed_ranks_are_those_of_one_call_on_one_sorted_set(
    initial: dict[str, int], steps: list[Step]
) -> None:
    board = dict(initial)
    expected = simulate(board, steps)  # `board` now holds the totals after the batch
    replayed = replay_ranks(
        [scrambled(outcome) for outcome in expected],
        higher_counts(board, scores_of(expected)),
    )
    assert replayed == expected


def test_a_repeated_event_of_a_player_without_a_score_stands_where_0_would() -> None:
    board = {"alice": 3, "bob": -2}
    # Event ids are per period: dave's increment repeats carol's, and dave has no score.
    expected = simulate(board, [("carol", 4, "e1"), ("dave", 1, "e1")])
    assert [(o.applied, o.score, o.rank, o.previous_score) for o in expected] == [
        (True, 4, 1, None),
        (False, 0, 3, None),
    ]
    replayed = replay_ranks(
        [scrambled(outcome) for outcome in expected], higher_counts(board, scores_of(expected))
    )
    assert replayed == expected


def test_scores_of_lists_every_score_before_and_after_once() -> None:
    outcomes = simulate({"alice": 5}, [("alice", 2, None), ("bob", 7, None)])
    assert scores_of(outcomes) == [5, 7]


def test_ranks_by_position_share_a_rank_on_ties() -> None:
    entries = [("alice", 30), ("bob", 20), ("carol", 20), ("dave", 10)]
    assert rank_by_position(entries, 1, 3, first_rank=None) == [
        RankedPlayer(username="bob", score=20, rank=2),
        RankedPlayer(username="carol", score=20, rank=2),
        RankedPlayer(username="dave", score=10, rank=4),
    ]


def test_a_window_below_the_top_starts_at_its_known_rank() -> None:
    # Positions 5.. of the board; the first shown ties with players above it (rank 3).
    entries = [("erin", 10), ("frank", 10), ("gus", 4)]
    assert rank_by_position(entries, 0, 3, first_rank=3, start=5) == [
        RankedPlayer(username="erin", score=10, rank=3),
        RankedPlayer(username="frank", score=10, rank=3),
        RankedPlayer(username="gus", score=4, rank=8),
    ]


def test_order_is_score_descending_then_username() -> None:
    entries = [("bob", 1), ("Zoe", 1), ("al", 2), ("élise", 1)]
    assert sorted(entries, key=order) == [("al", 2), ("Zoe", 1), ("bob", 1), ("élise", 1)]


def simulate_unique(
    board: dict[str, tuple[int, int]], steps: list[Step], sign: int
) -> list[IncrementOutcome]:
    """Outcomes as write.lua reports them on one EARLIEST sorted set (increments, `sign`
    -1 DESC / +1 ASC): `board` maps username -> (score, instant reached); a rank is
    1 + the players whose (stored score, member) sorts first."""
    seen: set[str] = set()
    clock = 1_000

    def key(username: str) -> tuple[int, str]:
        score, reached = board[username]
        return (sign * score, encode_instant(reached) + username)

    def rank_of(username: str | None) -> int:
        place = key(username) if username is not None else (0, "")
        return 1 + sum(1 for other in board if key(other) < place)

    outcomes = []
    for number, (username, delta, event_id) in enumerate(steps):
        increment = ScoreIncrement(
            board="b",
            period="2026-05",
            username=username,
            delta=delta,
            event_id=event_id or f"~{number}",
            client_event_id=event_id is not None,
        )
        had = board.get(username)
        old = None if had is None else had[0]
        reached = None if had is None else had[1]
        if event_id is not None and event_id in seen:
            rank = rank_of(username if had is not None else None)
            outcomes.append(
                IncrementOutcome(
                    increment=increment,
                    score=old or 0,
                    rank=rank,
                    applied=False,
                    previous_score=old,
                    previous_rank=None if old is None else rank,
                    reached_before=reached,
                )
            )
            continue
        if event_id is not None:
            seen.add(event_id)
        previous_rank = None if had is None else rank_of(username)
        clock += 1
        new = (old or 0) + delta
        if had is None or new != old:
            board[username] = (new, clock)
        outcomes.append(
            IncrementOutcome(
                increment=increment,
                score=new,
                rank=rank_of(username),
                applied=True,
                previous_score=old,
                previous_rank=previous_rank,
                instant=clock,
                reached_before=reached,
            )
        )
    return outcomes


@given(
    initial=st.dictionaries(NAMES, st.tuples(st.integers(-3, 3), st.integers(0, 999))),
    steps=st.lists(
        st.tuples(NAMES, st.integers(-3, 3), st.sampled_from([None, None, "e1", "e2"])),
        min_size=1,
        max_size=12,
    ),
    sign=st.sampled_from([-1, 1]),
)
def test_replayed_unique_ranks_are_those_of_one_call_on_one_sorted_set(
    initial: dict[str, tuple[int, int]], steps: list[Step], sign: int
) -> None:
    board = dict(initial)
    expected = simulate_unique(board, steps, sign)  # `board` now holds the batch's result
    keys = unique_keys(expected, sign)
    places = {place for pair in keys for place in pair if place is not None} | {(0, "")}

    def before(place: tuple[int, str]) -> int:
        return sum(
            1
            for name, (score, reached) in board.items()
            if (sign * score, encode_instant(reached) + name) < place
        )

    replayed = replay_unique_ranks(
        [scrambled(outcome) for outcome in expected], keys, {p: before(p) for p in places}
    )
    assert [(o.rank, o.previous_rank) for o in replayed] == [
        (o.rank, o.previous_rank) for o in expected
    ]
