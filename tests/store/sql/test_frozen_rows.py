"""store/sql/frozen_rows.py: a final period's rows in the board's order, against the plain
model of every rule x order x tie-break (tests/support/board_model.py), and the order keys
the live rankings write in cursors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from store.board_kinds import SortOrder, TieBreak
from store.boards import Board, ResetPeriod
from store.sql.frozen_rows import FrozenRow, order_key, place, ranked
from tests.support.board_model import KIND_BOARDS, PeriodModel

pytestmark = pytest.mark.unit

writes = st.lists(
    st.tuples(
        st.sampled_from(("a", "Bob", "bob", "é", "z")),
        st.integers(-3, 3),
        st.integers(0, 50),
    ),
    max_size=25,
)


@given(board=st.sampled_from(KIND_BOARDS), applied=writes)
def test_rows_follow_the_model_of_every_kind(
    board: Board, applied: list[tuple[str, int, int]]
) -> None:
    model = PeriodModel(board)
    instant = 0
    for username, value, step in applied:
        instant += 1 + step  # strictly increasing, as each ranking key's instants are
        model.write(username, value, instant)
    rows = ranked(board.sort_order, board.tie_break, model.kept.items(), model.reached)
    want = model.standings()
    assert [(row.username, row.score, row.rank) for row in rows] == [
        (player.username, player.score, player.rank) for player in want
    ]
    assert [row.position for row in rows] == list(range(1, len(rows) + 1))


def test_shared_ties_share_a_rank_listed_by_username() -> None:
    rows = ranked(SortOrder.ASC, TieBreak.SHARED, [("b", 5), ("a", 5), ("c", 2)], None)
    assert rows == [
        FrozenRow(1, "c", 2, 1, None),
        FrozenRow(2, "a", 5, 2, None),
        FrozenRow(3, "b", 5, 2, None),
    ]


def test_earliest_keys_carry_the_instant_as_the_live_rankings_do() -> None:
    rows = ranked(SortOrder.DESC, TieBreak.EARLIEST, [("b", 5), ("a", 5)], {"a": 9, "b": 7})
    assert [(row.username, row.rank, row.reached_us) for row in rows] == [("b", 1, 7), ("a", 2, 9)]
    key = order_key(SortOrder.DESC, TieBreak.EARLIEST, rows[0])
    assert key == (-5, "0000000000000007b")
    assert place(TieBreak.EARLIEST, key) == (-5, 7, "b")
    assert place(TieBreak.SHARED, (3, "b")) == (3, 0, "b")
    plain = Board("p", ResetPeriod.DAILY)
    assert order_key(plain.sort_order, plain.tie_break, rows[0]) == (-5, "b")
