"""Reset periods in a board's IANA time zone: which period holds an instant, and its UTC span.

A period starts at the first instant of its first local date (local midnight, or the end
of a DST gap where midnight is skipped) and ends where the next period starts, so the
periods of a board tile the time line: no gap, no overlap, never going back. Period ids
keep the formats of `store.boards` and name local dates: `2026-12-05`, `2026-W49` (ISO
week, starting on the local Monday), `2026-12`, `all`. In UTC every answer equals
`store.boards`' (a test compares them).

Only the standard library (`zoneinfo`, with the `tzdata` package as its fallback where the
system has no zone database).
"""

from __future__ import annotations

import functools
import re
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from store.boards import FOREVER, ResetPeriod

Clock = Callable[[], datetime]
"""Returns the current instant (timezone-aware); injected so tests can move time."""


def system_clock() -> datetime:
    """The current instant in UTC."""
    return datetime.now(UTC)


# ASCII digits only: `\d` would also accept other scripts' digits, which int() converts.
_PERIOD_PATTERNS = {
    ResetPeriod.NEVER: re.compile(r"all", re.ASCII),
    ResetPeriod.DAILY: re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})", re.ASCII),
    ResetPeriod.WEEKLY: re.compile(r"([0-9]{4})-W([0-9]{2})", re.ASCII),
    ResetPeriod.MONTHLY: re.compile(r"([0-9]{4})-([0-9]{2})", re.ASCII),
}

# What a zone name may look like before the zone database is asked about it: IANA names
# are ASCII letters, digits and `/_+-` (e.g. America/Argentina/Buenos_Aires, Etc/GMT+5).
_ZONE_NAME = re.compile(r"[A-Za-z0-9_+-]+(?:/[A-Za-z0-9_+-]+)*", re.ASCII)
MAX_ZONE_NAME_LENGTH = 64


class UnknownTimeZone(ValueError):
    """A time zone name that is not an IANA zone of this machine's zone database."""


@functools.cache
def _known_zone_names() -> frozenset[str]:
    # The allow-list keeps out files of the zone directory that are not zones (zone.tab,
    # posixrules, localtime) and makes the check case-exact on case-insensitive disks.
    return frozenset(zoneinfo.available_timezones()) | {"UTC"}


def zone_named(name: str) -> tzinfo:
    """The zone called `name` (an IANA name such as Europe/Paris); UnknownTimeZone otherwise."""
    if name == "UTC":
        return UTC  # needs no zone database
    if (
        len(name) > MAX_ZONE_NAME_LENGTH
        or not _ZONE_NAME.fullmatch(name)
        or name not in _known_zone_names()
    ):
        raise UnknownTimeZone(
            f"unknown time zone {name[:MAX_ZONE_NAME_LENGTH]!r}: "
            "use an IANA name such as UTC or Europe/Paris"
        )
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError) as error:
        raise UnknownTimeZone(f"time zone {name!r} cannot be loaded: {error}") from None


@dataclass(frozen=True, slots=True)
class PeriodSpan:
    """The UTC instants a period covers: start <= instant < end (both None for NEVER)."""

    start: datetime | None
    end: datetime | None

    def contains(self, instant: datetime) -> bool:
        """Whether `instant` falls in this period."""
        return (self.start is None or self.start <= instant) and (
            self.end is None or instant < self.end
        )


_ALWAYS = PeriodSpan(None, None)


@dataclass(frozen=True, slots=True)
class Calendar:
    """The periods of a board that resets every `reset` in the zone called `zone`."""

    reset: ResetPeriod
    zone: str = "UTC"
    clock: Clock = field(default=system_clock, compare=False)
    _tz: tzinfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_tz", zone_named(self.zone))

    def period_at(self, instant: datetime) -> str:
        """The id of the period that contains `instant` (timezone-aware)."""
        if self.reset is ResetPeriod.NEVER:
            return FOREVER
        first = _first_date(self.reset, instant.astimezone(self._tz).date())
        # Where a fall-back crosses midnight, the local date steps back for a while; the
        # next period has started by then, and periods never reopen.
        while True:
            period = _period_id(self.reset, first)
            span = self.span(period)
            following = _next_first_date(self.reset, first)
            if span is None or span.end is None or instant < span.end or following is None:
                return period
            first = following

    def period_at_timestamp(self, timestamp: float) -> str:
        """The id of the period that contains a Unix timestamp."""
        return self.period_at(datetime.fromtimestamp(timestamp, UTC))

    def current_period(self) -> str:
        """The id of the period that is live now (by the injected clock)."""
        return self.period_at(self.clock())

    def span(self, period: str) -> PeriodSpan | None:
        """The UTC start and end of a period id; None when malformed or not a real period."""
        return _span(self.reset, self.zone, self._tz, period)

    def is_valid_period(self, period: str) -> bool:
        """Whether `period` is a well-formed id of a real period of this board."""
        return self.span(period) is not None


@functools.lru_cache(maxsize=4096)
def _span(reset: ResetPeriod, zone: str, tz: tzinfo, period: str) -> PeriodSpan | None:
    # Cached: every write asks for the span of the live period, which rarely changes.
    # `zone` is part of the key so that two zones with equal tzinfo objects never mix.
    if reset is ResetPeriod.NEVER:
        return _ALWAYS if period == FOREVER else None
    first = parse_period(reset, period)
    if first is None:
        return None
    following = _next_first_date(reset, first)
    if following is None:
        return None  # the period would end after year 9999, as in store.boards
    try:
        return PeriodSpan(start_of_local_date(tz, first), start_of_local_date(tz, following))
    except OverflowError:  # a local date whose UTC instant is before year 1
        return None


def parse_period(reset: ResetPeriod, period: str) -> date | None:
    """The first local date of a DAILY, WEEKLY or MONTHLY period id; None when malformed."""
    pattern = _PERIOD_PATTERNS[reset]
    match = pattern.fullmatch(period)
    if match is None or reset is ResetPeriod.NEVER:
        return None
    numbers = [int(group) for group in match.groups()]
    try:
        match reset:
            case ResetPeriod.DAILY:
                return date(numbers[0], numbers[1], numbers[2])
            case ResetPeriod.WEEKLY:
                return date.fromisocalendar(numbers[0], numbers[1], 1)
            case ResetPeriod.MONTHLY:
                return date(numbers[0], numbers[1], 1)
    except ValueError:  # no such date or week
        return None
    return None  # unreachable: NEVER returned above


def _first_date(reset: ResetPeriod, day: date) -> date:
    """The first local date of the period holding `day`."""
    match reset:
        case ResetPeriod.WEEKLY:
            return day - timedelta(days=day.weekday())
        case ResetPeriod.MONTHLY:
            return day.replace(day=1)
        case _:
            return day


def _next_first_date(reset: ResetPeriod, first: date) -> date | None:
    """The first local date of the period after the one starting on `first` (None past 9999)."""
    try:
        match reset:
            case ResetPeriod.WEEKLY:
                return first + timedelta(weeks=1)
            case ResetPeriod.MONTHLY:
                return date(first.year + first.month // 12, first.month % 12 + 1, 1)
            case _:
                return first + timedelta(days=1)
    except (ValueError, OverflowError):
        return None


def _period_id(reset: ResetPeriod, first: date) -> str:
    match reset:
        case ResetPeriod.WEEKLY:
            year, week, _ = first.isocalendar()
            return f"{year:04d}-W{week:02d}"
        case ResetPeriod.MONTHLY:
            return f"{first.year:04d}-{first.month:02d}"
        case _:
            return first.isoformat()


def start_of_local_date(tz: tzinfo, day: date) -> datetime:
    """The first UTC instant whose local date in `tz` is `day` or later.

    That is local midnight; when midnight falls in a DST gap (America/Santiago in
    September: 00:00 becomes 01:00), it is the instant the gap ends.
    """
    midnight = datetime.combine(day, time(), tzinfo=tz)  # fold=0: the earlier if repeated
    start = midnight.astimezone(UTC)
    if start.astimezone(tz).replace(tzinfo=None) == midnight.replace(tzinfo=None):
        return start
    # Midnight does not exist. Read with the offset before the gap it maps to `start`
    # (past the gap's end); with the offset after it (fold=1), to an instant before the
    # gap starts. The transition lies between: bisect on whole seconds (zone transitions
    # are on whole seconds), at most 17 steps for a gap of a day.
    before = midnight.replace(fold=1).astimezone(UTC)
    old_offset = before.astimezone(tz).utcoffset()
    low, high = int(before.timestamp()), int(start.timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, tz).utcoffset() == old_offset:
            low = middle
        else:
            high = middle
    return datetime.fromtimestamp(high, UTC)
