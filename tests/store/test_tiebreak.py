"""EARLIEST tie-break encoding (store/tiebreak.py): members sort in the board's order."""

from __future__ import annotations

import functools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from store.board_model import SortOrder, TieBreak
from store.models import MAX_EXACT_SCORE
from store.tiebreak import (
    MAX_INSTANT,
    decode_member,
    encode_instant,
    encode_member,
    next_instant,
    ranks_ahead,
    score_from_stored,
    stored_score,
)

pytestmark = pytest.mark.unit

EARLIEST, SHARED = TieBreak.EARLIEST, TieBreak.SHARED
NOW_US = 1_796_500_000_000_000  # December 2026

# Scores crowd the exact edges, where a score with an instant folded in would round.
SCORES = st.one_of(
    st.integers(MAX_EXACT_SCORE - 3, MAX_EXACT_SCORE),
    st.integers(-MAX_EXACT_SCORE, -MAX_EXACT_SCORE + 3),
    st.integers(-2, 2),
    st.integers(-MAX_EXACT_SCORE, MAX_EXACT_SCORE),
)
INSTANTS = st.one_of(st.integers(NOW_US, NOW_US + 3), st.integers(0, MAX_INSTANT))
NAMES = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=8
)


def test_members_have_a_fixed_width_hex_prefix() -> None:
    assert encode_member(EARLIEST, 1, "bob") == "0000000000000001bob"
    assert encode_member(EARLIEST, NOW_US, "bob") == "000661e84056c800bob"
    assert encode_member(SHARED, NOW_US, "bob") == "bob"
    assert decode_member(EARLIEST, "000661e84056c800bob") == (NOW_US, "bob")
    assert decode_member(SHARED, "bob") == (0, "bob")
    # A username that itself starts with hex digits is still split at 16.
    assert decode_member(EARLIEST, encode_member(EARLIEST, 7, "00ff")) == (7, "00ff")


@pytest.mark.parametrize(
    "member", ["bob", "000000000000000", "0000000000000001", "000000000000000Gx"]
)
def test_malformed_members(member: str) -> None:
    with pytest.raises(ValueError, match="not an EARLIEST member"):
        decode_member(EARLIEST, member)


@pytest.mark.parametrize("instant", [-1, MAX_INSTANT + 1])
def test_instants_out_of_range(instant: int) -> None:
    with pytest.raises(ValueError, match="instant"):
        encode_instant(instant)


def test_stored_scores() -> None:
    assert stored_score(SortOrder.DESC, 5) == -5
    assert stored_score(SortOrder.ASC, 5) == 5
    assert str(float(stored_score(SortOrder.DESC, 0))) == "0.0"  # never -0
    for order in SortOrder:
        for score in (MAX_EXACT_SCORE, -MAX_EXACT_SCORE, 0):
            # Exact through a double, as Redis keeps it.
            assert score_from_stored(order, float(stored_score(order, score))) == score
    with pytest.raises(ValueError, match="beyond"):
        stored_score(SortOrder.ASC, MAX_EXACT_SCORE + 1)


def test_instants_strictly_increase_per_key() -> None:
    assert next_instant(NOW_US, None) == NOW_US
    assert next_instant(NOW_US, NOW_US) == NOW_US + 1  # same microsecond
    assert next_instant(NOW_US - 5_000, NOW_US) == NOW_US + 1  # the clock stepped back
    assert next_instant(NOW_US + 9, NOW_US) == NOW_US + 9


@pytest.mark.parametrize("order", list(SortOrder))
@pytest.mark.parametrize("tie_break", list(TieBreak))
@given(
    players=st.lists(
        st.tuples(SCORES, INSTANTS, NAMES), min_size=2, max_size=30, unique_by=lambda p: p[2]
    )
)
def test_stored_order_is_the_model_order(
    order: SortOrder, tie_break: TieBreak, players: list[tuple[int, int, str]]
) -> None:
    """Sorting by (stored score as a double, member as UTF-8 bytes), as Redis does, lists
    the players exactly in the board's order."""

    def redis_key(player: tuple[int, int, str]) -> tuple[float, bytes]:
        score, instant, name = player
        return (
            float(stored_score(order, score)),
            encode_member(tie_break, instant, name).encode("utf-8"),
        )

    def model(first: tuple[int, int, str], second: tuple[int, int, str]) -> int:
        if ranks_ahead(order, tie_break, first, second):
            return -1
        return 1 if ranks_ahead(order, tie_break, second, first) else 0

    by_redis = sorted(players, key=redis_key)
    assert by_redis == sorted(players, key=functools.cmp_to_key(model))
    # Unique members, hence unique positions, hence unique EARLIEST ranks.
    assert len({redis_key(player) for player in players}) == len(players)


def test_equal_scores_near_the_edge_rank_by_instant() -> None:
    top = MAX_EXACT_SCORE
    players = [(top, NOW_US + 1, "amy"), (top, NOW_US, "zoe"), (top - 1, NOW_US - 1, "bob")]
    ordered = sorted(
        players,
        key=lambda p: (stored_score(SortOrder.DESC, p[0]), encode_member(EARLIEST, p[1], p[2])),
    )
    assert [name for _, _, name in ordered] == ["zoe", "amy", "bob"]
