"""The board model (store/board_model.py): validation messages and the pure update rules."""

from __future__ import annotations

import dataclasses
import itertools
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from store.board_model import (
    BoardSpec,
    SortOrder,
    TieBreak,
    UpdateRule,
    changes_kept_score,
    delta_problem,
    kept_score,
    ranks_before,
    replay,
    spec_problems,
    submission_problem,
    total_problem,
)
from store.boards import ResetPeriod
from store.models import MAX_EXACT_SCORE

pytestmark = pytest.mark.unit

ASC, DESC = SortOrder.ASC, SortOrder.DESC
INCREMENT, BEST, LATEST = UpdateRule.INCREMENT, UpdateRule.BEST, UpdateRule.LATEST


def test_a_full_spec_is_valid() -> None:
    spec = BoardSpec(
        "race.times_2026-W1",
        reset=ResetPeriod.DAILY,
        update_rule=BEST,
        sort_order=ASC,
        tie_break=TieBreak.EARLIEST,
        time_zone="America/New_York",
        min_score=-MAX_EXACT_SCORE,
        max_score=MAX_EXACT_SCORE,
    )
    assert spec_problems(spec) == []
    assert spec_problems(BoardSpec("spread", shards=8, min_score=0, max_score=9)) == []
    assert spec_problems(BoardSpec("lap", update_rule=BEST, sort_order=ASC, shards=8)) == []
    assert spec_problems(BoardSpec("g", max_delta=MAX_EXACT_SCORE, min_score=5, max_score=5)) == []


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"id": ""}, "id must be 1..64"),
        ({"id": "a" * 65}, "id must be 1..64"),
        ({"id": "a b"}, "id must be 1..64"),
        ({"id": "caf\u00e9"}, "id must be 1..64"),
        ({"id": "board\n"}, "id must be 1..64"),
        ({"time_zone": "Mars/Olympus"}, "timeZone: unknown time zone 'Mars/Olympus'"),
        ({"min_score": 10, "max_score": 9}, r"minScore \(10\) must not be greater than maxScore"),
        ({"min_score": -(2**53)}, "minScore must be within"),
        ({"max_score": 2**53}, "maxScore must be within"),
        ({"max_delta": 0}, "maxDelta must be within 1.."),
        ({"max_delta": -5}, "maxDelta must be within 1.."),
        ({"max_delta": 2**53}, "maxDelta must be within 1.."),
        ({"max_delta": 10, "update_rule": BEST}, "maxDelta applies to INCREMENT boards only"),
        ({"shards": 0}, "shards must be 1..1024"),
    ],
)
def test_bad_specs_say_why(changes: dict[str, object], message: str) -> None:
    spec = dataclasses.replace(BoardSpec("b"), **changes)  # type: ignore[arg-type]
    problems = spec_problems(spec)
    assert len(problems) == 1, problems
    assert re.search(message, problems[0]), problems


def test_every_problem_is_reported() -> None:
    spec = BoardSpec("", time_zone="x", min_score=3, max_score=2, max_delta=0)
    assert len(spec_problems(spec)) == 4


@pytest.mark.parametrize(
    ("rule", "order", "kept", "submitted", "expected"),
    [
        (INCREMENT, DESC, None, 5, 5),
        (INCREMENT, ASC, 5, -7, -2),
        (BEST, DESC, None, 5, 5),
        (BEST, DESC, 5, 7, 7),
        (BEST, DESC, 7, 5, 7),
        (BEST, ASC, 7, 5, 5),
        (BEST, ASC, 5, 7, 5),
        (LATEST, DESC, 7, 5, 5),
        (LATEST, ASC, 5, 7, 7),
    ],
)
def test_kept_score(
    rule: UpdateRule, order: SortOrder, kept: int | None, submitted: int, expected: int
) -> None:
    assert kept_score(rule, order, kept, submitted) == expected


def test_an_equal_score_does_not_count_as_a_change() -> None:
    for rule, order in itertools.product(UpdateRule, SortOrder):
        assert changes_kept_score(rule, order, None, 0)
    assert not changes_kept_score(BEST, DESC, 5, 5)
    assert not changes_kept_score(LATEST, ASC, 5, 5)
    assert changes_kept_score(LATEST, DESC, 5, 4)
    assert not changes_kept_score(BEST, DESC, 5, 4)
    assert changes_kept_score(BEST, ASC, 5, 4)


def test_caps() -> None:
    capped = BoardSpec("b", min_score=-10, max_score=100, max_delta=50)
    assert delta_problem(capped, 50, service_max_delta=5) is None  # the board's bound wins
    assert (
        delta_problem(capped, -51, service_max_delta=5) == "delta must be within ±50 on board 'b'"
    )
    assert delta_problem(BoardSpec("b"), 6, service_max_delta=5) is not None
    assert delta_problem(BoardSpec("b"), 0, service_max_delta=5) == "delta must not be zero"
    assert total_problem(capped, 100) is None
    assert total_problem(capped, 101) == "the total 101 is above maxScore 100 of board 'b'"
    assert total_problem(capped, -11) == "the total -11 is below minScore -10 of board 'b'"
    best = BoardSpec("r", update_rule=BEST, sort_order=ASC, min_score=1)
    assert submission_problem(best, 0) == "score 0 is below minScore 1 of board 'r'"
    assert submission_problem(best, MAX_EXACT_SCORE) is None
    assert submission_problem(best, MAX_EXACT_SCORE + 1) is not None
    assert total_problem(BoardSpec("u"), -(MAX_EXACT_SCORE + 1)) is not None


# Hypothesis: the rules against a written-out model of a player's whole history.

EDGE = [0, 1, -1, MAX_EXACT_SCORE, -MAX_EXACT_SCORE, MAX_EXACT_SCORE - 1]
VALUES = st.one_of(st.sampled_from(EDGE), st.integers(-3, 3), st.integers(-(2**53), 2**53))


def model_kept_after_each(rule: UpdateRule, order: SortOrder, values: list[int]) -> list[int]:
    """The kept score after each write, from the definitions: a running sum, the best so
    far, the last one."""
    out = []
    for count in range(1, len(values) + 1):
        seen = values[:count]
        match rule:
            case UpdateRule.INCREMENT:
                out.append(sum(seen))
            case UpdateRule.BEST:
                out.append(max(seen) if order is DESC else min(seen))
            case UpdateRule.LATEST:
                out.append(seen[-1])
    return out


@given(
    rule=st.sampled_from(UpdateRule),
    order=st.sampled_from(SortOrder),
    values=st.lists(VALUES, min_size=1, max_size=12),
)
def test_rules_against_the_model(rule: UpdateRule, order: SortOrder, values: list[int]) -> None:
    expected = model_kept_after_each(rule, order, values)
    kept: int | None = None
    for value, want in zip(values, expected, strict=True):
        changed = changes_kept_score(rule, order, kept, value)
        new = kept_score(rule, order, kept, value)
        assert new == want
        assert changed == (kept is None or new != kept)
        if rule is UpdateRule.BEST and kept is not None:
            # A BEST board changes only for a strictly better submission.
            assert changed == ranks_before(order, value, kept)
        kept = new

    # The EARLIEST instant is where the final run of unchanged kept scores began; on a BEST
    # board that is the first submission of the best score.
    instants = [1000 + 7 * index for index in range(len(values))]
    start = len(expected) - 1
    while start > 0 and expected[start - 1] == expected[-1]:
        start -= 1
    assert replay(rule, order, zip(instants, values, strict=True)) == (
        expected[-1],
        instants[start],
    )
    if rule is UpdateRule.BEST:
        assert instants[start] == instants[values.index(expected[-1])]


def test_replay_of_nothing() -> None:
    assert replay(BEST, DESC, []) is None
