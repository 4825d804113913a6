"""Reset periods in a board's time zone (store/periods.py): ids, UTC spans, DST, parsing."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from store.boards import Board, ResetPeriod, period_end
from store.periods import (
    Calendar,
    PeriodSpan,
    UnknownTimeZone,
    parse_period,
    start_of_local_date,
    zone_named,
)

pytestmark = pytest.mark.unit

DAILY, WEEKLY, MONTHLY, NEVER = (
    ResetPeriod.DAILY,
    ResetPeriod.WEEKLY,
    ResetPeriod.MONTHLY,
    ResetPeriod.NEVER,
)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


# UTC: the same answers as store.boards, which the service uses today.

INSTANTS = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2200, 12, 31), timezones=st.just(UTC)
)


@pytest.mark.parametrize("reset", list(ResetPeriod))
@given(instant=INSTANTS)
def test_utc_period_ids_match_store_boards(reset: ResetPeriod, instant: datetime) -> None:
    assert Calendar(reset).period_at(instant) == Board("b", reset).period_at(instant)


@pytest.mark.parametrize("reset", [DAILY, WEEKLY, MONTHLY])
def test_utc_spans_match_store_boards_for_many_instants(reset: ResetPeriod) -> None:
    calendar = Calendar(reset)
    board = Board("b", reset)
    generator = random.Random(12)
    start = utc(1990, 1, 1).timestamp()
    for _ in range(3000):
        instant = datetime.fromtimestamp(generator.uniform(start, start + 80 * 365 * 86400), UTC)
        period = board.period_at(instant)
        assert calendar.period_at(instant) == period
        span = calendar.span(period)
        assert span is not None
        assert span.end == period_end(reset, period)
        assert span.contains(instant)
        # Periods tile the time line: this one starts where the one before ended.
        assert span.start is not None
        assert calendar.period_at(span.start - timedelta(microseconds=1)) != period
        assert calendar.period_at(span.start) == period


@pytest.mark.parametrize("reset", [DAILY, WEEKLY, MONTHLY, NEVER])
@given(text=st.text(alphabet="0123456789-Wal\u0661\u0969 ", max_size=11))
def test_utc_validity_matches_store_boards_for_ascii(reset: ResetPeriod, text: str) -> None:
    expected = Board("b", reset).is_valid_period(text)
    if not text.isascii():
        expected = False  # store.boards still accepts other scripts' digits; ASCII only here
    assert Calendar(reset).is_valid_period(text) == expected


def test_non_ascii_digits_are_refused() -> None:
    arabic_indic = "\u0662\u0660\u0662\u0666-12-05"  # "2026" in Arabic-Indic digits
    assert int("\u0662\u0660\u0662\u0666") == 2026
    assert parse_period(DAILY, arabic_indic) is None
    assert not Calendar(DAILY).is_valid_period(arabic_indic)
    assert not Calendar(WEEKLY).is_valid_period("2026-W\u0664\u0669")


@pytest.mark.parametrize(
    ("reset", "period"),
    [
        (MONTHLY, "2026-13"),
        (MONTHLY, "2026-00"),
        (DAILY, "2026-02-29"),
        (WEEKLY, "2025-W53"),
        (WEEKLY, "2026-W00"),
        (NEVER, "2026"),
        (MONTHLY, "all"),
        (DAILY, "2026-12-05\n"),
        (DAILY, "9999-12-31"),  # would end past year 9999
    ],
)
def test_invalid_periods(reset: ResetPeriod, period: str) -> None:
    assert Calendar(reset, "Europe/Paris").span(period) is None


# Time zones.


def test_daily_board_in_new_york_across_both_2026_dst_changes() -> None:
    calendar = Calendar(DAILY, "America/New_York")
    # Spring forward on Sunday 8 March 2026 (02:00 EST -> 03:00 EDT): a 23-hour day.
    assert calendar.span("2026-03-07") == PeriodSpan(utc(2026, 3, 7, 5), utc(2026, 3, 8, 5))
    assert calendar.span("2026-03-08") == PeriodSpan(utc(2026, 3, 8, 5), utc(2026, 3, 9, 4))
    assert calendar.span("2026-03-09") == PeriodSpan(utc(2026, 3, 9, 4), utc(2026, 3, 10, 4))
    # Fall back on Sunday 1 November 2026 (02:00 EDT -> 01:00 EST): a 25-hour day.
    assert calendar.span("2026-10-31") == PeriodSpan(utc(2026, 10, 31, 4), utc(2026, 11, 1, 4))
    assert calendar.span("2026-11-01") == PeriodSpan(utc(2026, 11, 1, 4), utc(2026, 11, 2, 5))
    assert calendar.span("2026-11-02") == PeriodSpan(utc(2026, 11, 2, 5), utc(2026, 11, 3, 5))
    # The reset instant is exact to the microsecond on both sides of each change.
    for reset_at, before, after in [
        (utc(2026, 3, 8, 5), "2026-03-07", "2026-03-08"),
        (utc(2026, 3, 9, 4), "2026-03-08", "2026-03-09"),
        (utc(2026, 11, 1, 4), "2026-10-31", "2026-11-01"),
        (utc(2026, 11, 2, 5), "2026-11-01", "2026-11-02"),
    ]:
        assert calendar.period_at(reset_at - timedelta(microseconds=1)) == before
        assert calendar.period_at(reset_at) == after


def test_injected_clock_moves_the_live_period() -> None:
    clock = FakeClock(utc(2026, 11, 2, 4, 59, 59))
    calendar = Calendar(DAILY, "America/New_York", clock=clock)
    assert calendar.current_period() == "2026-11-01"  # 23:59:59 EST, the 25th hour
    clock.now = utc(2026, 11, 2, 5)
    assert calendar.current_period() == "2026-11-02"


def test_midnight_skipped_in_santiago() -> None:
    # Chile starts DST at local midnight: Sunday 6 September 2026 begins at 01:00 -03.
    zone = ZoneInfo("America/Santiago")
    calendar = Calendar(DAILY, "America/Santiago")
    span = calendar.span("2026-09-06")
    assert span == PeriodSpan(utc(2026, 9, 6, 4), utc(2026, 9, 7, 3))
    assert span.start is not None
    assert span.start.astimezone(zone).replace(tzinfo=None) == datetime(2026, 9, 6, 1)
    assert calendar.period_at(span.start - timedelta(microseconds=1)) == "2026-09-05"
    assert calendar.period_at(span.start) == "2026-09-06"
    # And ends it at Saturday 24:00 -> 23:00, a 25-hour Saturday.
    assert calendar.span("2026-04-04") == PeriodSpan(utc(2026, 4, 4, 3), utc(2026, 4, 5, 4))
    # A weekly board starting on that Sunday's Monday is unaffected; one holding it is.
    assert Calendar(WEEKLY, "America/Santiago").span("2026-W36") == PeriodSpan(
        utc(2026, 8, 31, 4), utc(2026, 9, 7, 3)
    )


@pytest.mark.parametrize(
    ("zone", "day", "start"),
    [
        ("Asia/Beirut", "2026-03-29", utc(2026, 3, 28, 22)),
        ("America/Havana", "2026-03-08", utc(2026, 3, 8, 5)),
        ("Africa/Cairo", "2026-04-24", utc(2026, 4, 23, 22)),
    ],
)
def test_other_zones_skipping_midnight(zone: str, day: str, start: datetime) -> None:
    calendar = Calendar(DAILY, zone)
    span = calendar.span(day)
    assert span is not None
    assert span.start == start
    assert span.end is not None
    assert span.end - start == timedelta(hours=23)
    assert calendar.period_at(start) == day
    assert calendar.period_at(start - timedelta(microseconds=1)) != day


def test_a_skipped_day_is_an_empty_period() -> None:
    # Samoa skipped Friday 30 December 2011 altogether (29th 23:59:59 -10 -> 31st 00:00 +14).
    calendar = Calendar(DAILY, "Pacific/Apia")
    gap = utc(2011, 12, 30, 10)
    assert calendar.span("2011-12-30") == PeriodSpan(gap, gap)
    assert calendar.period_at(gap - timedelta(seconds=1)) == "2011-12-29"
    assert calendar.period_at(gap) == "2011-12-31"


def test_weekly_starts_on_the_local_monday() -> None:
    calendar = Calendar(WEEKLY, "Asia/Tokyo")
    # Monday 30 November 2026 00:00 JST is Sunday 15:00 UTC.
    assert calendar.period_at(utc(2026, 11, 29, 15)) == "2026-W49"
    assert calendar.period_at(utc(2026, 11, 29, 14, 59, 59)) == "2026-W48"
    assert Board("b", WEEKLY).period_at(utc(2026, 11, 29, 15)) == "2026-W48"


def test_monthly_in_paris_across_dst() -> None:
    calendar = Calendar(MONTHLY, "Europe/Paris")
    # March starts in winter time (+01) and ends in summer time (+02).
    assert calendar.span("2026-03") == PeriodSpan(utc(2026, 2, 28, 23), utc(2026, 3, 31, 22))


ZONES = ["America/New_York", "America/Santiago", "Pacific/Apia", "Australia/Lord_Howe"]


@given(
    instant=INSTANTS,
    zone=st.sampled_from([*ZONES, "America/Goose_Bay", "Asia/Kolkata"]),
    reset=st.sampled_from([DAILY, WEEKLY, MONTHLY]),
)
def test_the_period_at_an_instant_contains_it(
    instant: datetime, zone: str, reset: ResetPeriod
) -> None:
    calendar = Calendar(reset, zone)
    period = calendar.period_at(instant)
    span = calendar.span(period)
    assert span is not None
    assert span.contains(instant)
    # Its first local date is the one the id names, except where a skipped day starts late.
    first = parse_period(reset, period)
    assert span.start is not None
    assert first is not None
    assert span.start.astimezone(ZoneInfo(zone)).date() >= first


# Zone names.


@pytest.mark.parametrize(
    "name", ["UTC", "Europe/Paris", "America/Argentina/Buenos_Aires", "Etc/GMT+5"]
)
def test_known_zones(name: str) -> None:
    assert zone_named(name) is not None
    Calendar(DAILY, name)


@pytest.mark.parametrize(
    "name",
    [
        "",
        "Mars/Olympus",
        "europe/paris",
        "Europe/Paris ",
        "/etc/passwd",
        "../../etc/passwd",
        "Europe/../Europe/Paris",
        "zone.tab",
        "posixrules",
        "America",
        "Europe/Par\u00eds",
        "A" * 65,
    ],
)
def test_unknown_zones(name: str) -> None:
    with pytest.raises(UnknownTimeZone, match="time zone"):
        zone_named(name)
    with pytest.raises(ValueError, match="IANA"):
        Calendar(DAILY, name)


def test_never_board() -> None:
    calendar = Calendar(NEVER, "Europe/Paris")
    assert calendar.period_at(utc(2026, 1, 1)) == "all"
    assert calendar.span("all") == PeriodSpan(None, None)
    assert calendar.span("2026") is None


def test_a_fall_back_across_midnight_never_reopens_the_day_before() -> None:
    # Goose Bay, 28 October 1990: at 00:01 ADT clocks went back to 23:01 AST on the 27th.
    calendar = Calendar(DAILY, "America/Goose_Bay")
    zone = ZoneInfo("America/Goose_Bay")
    assert calendar.span("1990-10-28") == PeriodSpan(utc(1990, 10, 28, 3), utc(1990, 10, 29, 4))
    repeated = utc(1990, 10, 28, 3, 30)
    assert repeated.astimezone(zone).date().isoformat() == "1990-10-27"
    assert calendar.period_at(repeated) == "1990-10-28"
    assert calendar.period_at(utc(1990, 10, 28, 2, 59, 59)) == "1990-10-27"


class _GapAcrossMidnight(tzinfo):
    """A zone that jumps from 23:30 (+00) to 00:30 (+01) on 6 December 2026 (none in tzdata
    does, but nothing forbids it): midnight is inside the gap, not at its start."""

    _before, _after = timedelta(0), timedelta(hours=1)
    _transition = datetime(2026, 12, 5, 23, 30)  # UTC, = 23:30 local before the jump

    def utcoffset(self, dt: datetime | None) -> timedelta:
        assert dt is not None
        wall = dt.replace(tzinfo=None)
        if wall < self._transition:
            return self._before
        if wall >= self._transition + self._after:
            return self._after
        return self._before if dt.fold == 0 else self._after

    def dst(self, dt: datetime | None) -> timedelta:
        return timedelta(0)

    def tzname(self, dt: datetime | None) -> str:
        return "GAP"

    def fromutc(self, dt: datetime) -> datetime:
        wall = dt.replace(tzinfo=None)
        offset = self._before if wall < self._transition else self._after
        return (wall + offset).replace(tzinfo=self)


def test_midnight_inside_a_gap_starts_the_day_where_the_gap_ends() -> None:
    zone = _GapAcrossMidnight()
    start = start_of_local_date(zone, date(2026, 12, 6))
    assert start == utc(2026, 12, 5, 23, 30)
    assert start.astimezone(zone).replace(tzinfo=None) == datetime(2026, 12, 6, 0, 30)
    assert (start - timedelta(microseconds=1)).astimezone(zone).date() == date(2026, 12, 5)
    assert start_of_local_date(zone, date(2026, 12, 7)) == utc(2026, 12, 6, 23)
