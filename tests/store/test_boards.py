"""Boards, reset periods and period ids (UTC)."""

from __future__ import annotations

import zlib
from datetime import UTC, datetime, timedelta, timezone

import pytest

from store.boards import Board, ResetPeriod, parse_boards, period_end

pytestmark = pytest.mark.unit

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


NON_ASCII_DIGITS = [
    (ResetPeriod.MONTHLY, "\u0662\u0660\u0662\u0666-\u0661\u0662"),  # Arabic-Indic
    (ResetPeriod.MONTHLY, "\uff12\uff10\uff12\uff16-\uff11\uff12"),  # full-width
    (ResetPeriod.MONTHLY, "\u0968\u0966\u0968\u096c-\u0967\u0968"),  # Devanagari
    (ResetPeriod.MONTHLY, "\U0001d7d0\U0001d7ce\U0001d7d0\U0001d7d4-\U0001d7cf\U0001d7d0"),
    (ResetPeriod.MONTHLY, "202\u0666-12"),  # mixed
    (ResetPeriod.DAILY, "2026-12-\u0660\u0661"),
    (ResetPeriod.WEEKLY, "\uff12\uff10\uff12\uff16-W01"),
]


@pytest.mark.parametrize(("reset", "period"), NON_ASCII_DIGITS)
def test_periods_have_ascii_digits_only(reset: ResetPeriod, period: str) -> None:
    # `int()` reads these as 2026, 12...: `\d` let them through to the stores.
    assert not Board("b", reset).is_valid_period(period)
    assert period_end(reset, period) is None


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


def test_parse_boards_with_shards() -> None:
    boards = parse_boards("global:monthly:shards=8,alltime:never")
    assert [(board.id, board.shards) for board in boards] == [("global", 8), ("alltime", 1)]


@pytest.mark.parametrize(
    "spec",
    ["g:monthly:shards=0", "g:monthly:shards=1025", "g:monthly:shards=x", "g:monthly:replicas=2"],
)
def test_parse_boards_rejects_bad_shards(spec: str) -> None:
    with pytest.raises(ValueError, match="shards"):
        parse_boards(spec)


def test_a_player_stays_in_one_shard_across_processes() -> None:
    board = Board("global", ResetPeriod.MONTHLY, shards=8)
    # CRC-32 of the UTF-8 bytes, not Python's per-process salted hash: every instance agrees.
    for name in ("ana", "bo", "émile", "ninja_42"):
        assert board.shard_of(name) == zlib.crc32(name.encode()) % 8
    assert {board.shard_of(f"player{index}") for index in range(200)} == set(range(8))
    assert Board("global", ResetPeriod.MONTHLY).shard_of("ana") == 0
