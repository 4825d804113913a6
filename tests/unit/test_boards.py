"""Boards, reset periods and period ids (UTC)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from store.boards import Board, ResetPeriod, parse_boards, period_end

MOMENT = datetime(2026, 11, 23, 23, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("reset", "period"),
    [
        (ResetPeriod.NEVER, "all"),
        (ResetPeriod.DAILY, "2026-11-23"),
        (ResetPeriod.WEEKLY, "2026-W48"),
        (ResetPeriod.MONTHLY, "2026-11"),
    ],
)
def test_period_ids(reset: ResetPeriod, period: str) -> None:
    board = Board("b", reset)
    assert board.period_at(MOMENT) == period
    assert board.is_valid_period(period)


def test_periods_are_computed_in_utc() -> None:
    tokyo = timezone(timedelta(hours=9))
    # 08:30 on the 24th in Tokyo is still the 23rd in UTC.
    assert Board("b", ResetPeriod.DAILY).period_at(datetime(2026, 11, 24, 8, 30, tzinfo=tokyo)) == (
        "2026-11-23"
    )


def test_iso_week_crosses_the_year() -> None:
    board = Board("b", ResetPeriod.WEEKLY)
    assert board.period_at(datetime(2027, 1, 1, tzinfo=UTC)) == "2026-W53"
    assert period_end(ResetPeriod.WEEKLY, "2026-W53") == datetime(2027, 1, 4, tzinfo=UTC)


@pytest.mark.parametrize(
    ("reset", "period"),
    [
        (ResetPeriod.MONTHLY, "2026-13"),
        (ResetPeriod.MONTHLY, "2026-1"),
        (ResetPeriod.DAILY, "2026-02-30"),
        (ResetPeriod.WEEKLY, "2025-W53"),
        (ResetPeriod.WEEKLY, "2026-48"),
        (ResetPeriod.NEVER, "2026"),
        (ResetPeriod.MONTHLY, "all"),
    ],
)
def test_invalid_periods(reset: ResetPeriod, period: str) -> None:
    assert not Board("b", reset).is_valid_period(period)


def test_period_end_of_december() -> None:
    assert period_end(ResetPeriod.MONTHLY, "2026-12") == datetime(2027, 1, 1, tzinfo=UTC)


def test_parse_boards_adds_global() -> None:
    boards = parse_boards("weekly-race:weekly, alltime:NEVER")
    assert [(board.id, board.reset) for board in boards] == [
        ("weekly-race", ResetPeriod.WEEKLY),
        ("alltime", ResetPeriod.NEVER),
        ("global", ResetPeriod.MONTHLY),
    ]
    assert parse_boards("global:daily") == (Board("global", ResetPeriod.DAILY),)


@pytest.mark.parametrize("spec", ["x", "x:hourly", "a b:daily", "x:daily,x:weekly", ":daily"])
def test_parse_boards_rejects(spec: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_boards(spec)
