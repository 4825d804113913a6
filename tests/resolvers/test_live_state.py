"""A board's live state: the rollover to a new period."""

from __future__ import annotations

import pytest

from resolvers.live_state import Feed, PlayerState
from store.boards import Board, ResetPeriod

pytestmark = pytest.mark.unit


def test_a_new_period_forgets_every_standing_and_voids_the_old_periods_reads() -> None:
    feed = Feed(Board("global", ResetPeriod.MONTHLY), "2026-11")
    ana, bo = PlayerState("ana"), PlayerState("bo")
    feed.players.update(ana=ana, bo=bo)
    feed.set_standing(ana, 40, 1)
    feed.set_standing(bo, 10, 2)
    epoch = feed.epoch
    feed.begin_period("2026-12")
    assert feed.period == "2026-12"
    assert feed.epoch == epoch + 1
    assert feed.index == []
    assert [(state.score, state.rank, state.changes) for state in (ana, bo)] == [
        (None, None, 1),
        (None, None, 1),
    ]
    # The index follows new standings from scratch.
    feed.set_standing(bo, 5, 1)
    assert feed.index == [(5, "bo")]
