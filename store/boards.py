"""Boards and their reset periods: which period is live now, and which period ids are valid."""

from __future__ import annotations

import enum
import functools
import re
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, overload

from store.board_kinds import SortOrder, TieBreak, UpdateRule

if TYPE_CHECKING:
    from store.periods import Calendar


class ResetPeriod(enum.Enum):
    """How often a board starts over; periods are computed in UTC."""

    NEVER = "never"
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"


FOREVER = "all"

# ASCII digits only: `\d` also matches Arabic-Indic, full-width, Devanagari... digits, which
# `int()` reads as numbers, so `"٢٠٢٦-١٢"` passed as a period and reached the stores.
_PERIOD_PATTERNS = {
    ResetPeriod.NEVER: re.compile(r"all"),
    ResetPeriod.DAILY: re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})"),
    ResetPeriod.WEEKLY: re.compile(r"([0-9]{4})-W([0-9]{2})"),
    ResetPeriod.MONTHLY: re.compile(r"([0-9]{4})-([0-9]{2})"),
}

BOARD_ID_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,64}")


MAX_SHARDS = 1024


@dataclass(frozen=True, slots=True)
class Board:
    """A leaderboard: an id, how often it resets, and over how many sorted sets it is spread."""

    id: str
    reset: ResetPeriod
    shards: int = 1
    """1: one sorted set per period. More: each player lives in one of `shards` sorted sets
    (by a hash of the username), so one board can outgrow one Redis Cluster node."""
    time_zone: str = "UTC"
    """IANA zone where periods start (boards created at run time); UTC for declared boards."""
    max_delta: int | None = None
    """Largest |delta| of one increment on this board; None: the service's bound."""
    active: bool = True
    """False once archived: reads work, writes are refused."""
    update_rule: UpdateRule = UpdateRule.INCREMENT
    """How submissions combine (boards created at run time; INCREMENT for declared boards)."""
    sort_order: SortOrder = SortOrder.DESC
    tie_break: TieBreak = TieBreak.SHARED
    min_score: int | None = None
    """Lowest kept score (the total, on INCREMENT boards); None: no bound but ±(2^53 - 1)."""
    max_score: int | None = None
    plain: bool = field(init=False, repr=False, compare=False)
    """INCREMENT, DESC, SHARED, no caps on the total: what increment.lua serves (any other
    board's writes take write.lua, docs/boards.md). Computed once: the write path reads it
    per board period of every call."""

    def __post_init__(self) -> None:
        # Frozen: set through object.__setattr__, once, at construction.
        object.__setattr__(
            self,
            "plain",
            self.update_rule is UpdateRule.INCREMENT
            and self.sort_order is SortOrder.DESC
            and self.tie_break is TieBreak.SHARED
            and self.min_score is None
            and self.max_score is None,
        )

    @property
    def summed(self) -> bool:
        """INCREMENT, DESC, SHARED (caps allowed): moderation takes a player out of, or puts
        a total back into, its live ranking directly (docs/moderation.md); the other boards'
        periods are rebuilt from the history instead."""
        return (
            self.update_rule is UpdateRule.INCREMENT
            and self.sort_order is SortOrder.DESC
            and self.tie_break is TieBreak.SHARED
        )

    @property
    def keeps_instants(self) -> bool:
        """Whether writes get an instant (history `applied_at_us`): BEST and LATEST boards,
        whose rebuild replays writes in the order applied, and EARLIEST ones, which rank by it."""
        return self.update_rule is not UpdateRule.INCREMENT or self.tie_break is TieBreak.EARLIEST

    @property
    def sign(self) -> int:
        """Stored sorted-set score = sign * score: ascending stored order is the board's order."""
        return -1 if self.sort_order is SortOrder.DESC else 1

    def shard_of(self, username: str) -> int:
        """The shard holding `username`: stable across processes and versions (CRC-32)."""
        if self.shards == 1:
            return 0
        return zlib.crc32(username.encode("utf-8")) % self.shards

    def period_at(self, moment: datetime) -> str:
        """The id of the period that contains `moment` (in the board's zone)."""
        if self.time_zone != "UTC":
            return _calendar(self.reset, self.time_zone).period_at(moment)
        moment = moment.astimezone(UTC)
        match self.reset:
            case ResetPeriod.NEVER:
                return FOREVER
            case ResetPeriod.DAILY:
                return moment.strftime("%Y-%m-%d")
            case ResetPeriod.WEEKLY:
                year, week, _ = moment.isocalendar()
                return f"{year:04d}-W{week:02d}"
            case ResetPeriod.MONTHLY:
                return moment.strftime("%Y-%m")

    def period_at_timestamp(self, timestamp: float) -> str:
        """The id of the period that contains a Unix timestamp."""
        return self.period_at(datetime.fromtimestamp(timestamp, UTC))

    def current_period(self) -> str:
        """The id of the period that is live now."""
        return self.period_at(datetime.now(UTC))

    def period_end(self, period: str) -> datetime | None:
        """The UTC instant a period ends: where the next one starts in the board's zone
        (the local midnight, not the UTC one); None for a board that never resets or a
        period id that is not one of this board's."""
        if self.time_zone != "UTC":
            span = _calendar(self.reset, self.time_zone).span(period)
            return None if span is None else span.end
        return period_end(self.reset, period)

    def is_valid_period(self, period: str) -> bool:
        """Whether `period` is a well-formed id of a real period of this board."""
        if self.time_zone != "UTC":
            return _calendar(self.reset, self.time_zone).is_valid_period(period)
        return period_end(self.reset, period) is not None or (
            self.reset is ResetPeriod.NEVER and period == FOREVER
        )


@functools.lru_cache(maxsize=1024)
def _calendar(reset: ResetPeriod, zone: str) -> Calendar:
    # Imported here: store.periods builds on this module's ResetPeriod.
    from store.periods import Calendar

    return Calendar(reset, zone)


class BoardIndex(Sequence[Board]):
    """The boards one process serves, shared by its components (stores, service, live feed),
    so that a board created at run time reaches all of them at once: each keeps
    `board_index(boards)`, which is this index's live mapping, not a copy."""

    def __init__(self, boards: Iterable[Board] = ()) -> None:
        self._by_id: dict[str, Board] = {board.id: board for board in boards}

    @property
    def by_id(self) -> Mapping[str, Board]:
        """The boards by id (live: later changes show through)."""
        return self._by_id

    def put(self, board: Board) -> None:
        """Serve `board` (new, or a changed version of one served)."""
        self._by_id[board.id] = board

    @overload
    def __getitem__(self, index: int) -> Board: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Board]: ...
    def __getitem__(self, index: int | slice) -> Board | Sequence[Board]:
        return list(self._by_id.values())[index]

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Iterator[Board]:
        return iter(list(self._by_id.values()))


def board_index(boards: Iterable[Board]) -> Mapping[str, Board]:
    """Boards by id: the live mapping of a `BoardIndex`, else a copy of `boards`."""
    if isinstance(boards, BoardIndex):
        return boards.by_id
    return {board.id: board for board in boards}


def period_end(reset: ResetPeriod, period: str) -> datetime | None:
    """The UTC instant a period ends (None for NEVER, or when the id is malformed)."""
    match = _PERIOD_PATTERNS[reset].fullmatch(period)
    if match is None or reset is ResetPeriod.NEVER:
        return None
    numbers = [int(group) for group in match.groups()]
    try:
        match reset:
            case ResetPeriod.DAILY:
                start = date(numbers[0], numbers[1], numbers[2])
                end = start + timedelta(days=1)
            case ResetPeriod.WEEKLY:
                start = date.fromisocalendar(numbers[0], numbers[1], 1)
                end = start + timedelta(weeks=1)
            case ResetPeriod.MONTHLY:
                year, month = numbers
                start = date(year, month, 1)
                end = date(year + month // 12, month % 12 + 1, 1)
    except (ValueError, OverflowError):  # no such date, or one past year 9999
        return None
    return datetime(end.year, end.month, end.day, tzinfo=UTC)


def parse_boards(spec: str) -> tuple[Board, ...]:
    """Parse `id:reset[:shards=N]` items separated by commas, e.g.
    `global:monthly:shards=8,alltime:never`.

    The `global` monthly board always exists; it is added when the spec leaves it out.
    """
    boards: dict[str, Board] = {}
    for raw_item in spec.split(","):
        item = raw_item.strip()
        if not item:
            continue
        board_id, separator, rest = item.partition(":")
        board_id = board_id.strip()
        reset_name, _, options = rest.partition(":")
        if not separator:
            raise ValueError(f"board {item!r} needs a reset period, e.g. {board_id}:monthly")
        if not BOARD_ID_PATTERN.fullmatch(board_id):
            raise ValueError(
                f"board id {board_id!r} must be 1..64 of letters, digits, '_', '-', '.'"
            )
        try:
            reset = ResetPeriod(reset_name.strip().lower())
        except ValueError:
            choices = ", ".join(member.value for member in ResetPeriod)
            raise ValueError(f"board {board_id!r}: reset must be one of {choices}") from None
        if board_id in boards:
            raise ValueError(f"board {board_id!r} is configured twice")
        boards[board_id] = Board(board_id, reset, _parse_shards(board_id, options))
    boards.setdefault("global", Board("global", ResetPeriod.MONTHLY))
    return tuple(boards.values())


def _parse_shards(board_id: str, options: str) -> int:
    options = options.strip()
    if not options:
        return 1
    name, _, value = options.partition("=")
    if name.strip().lower() != "shards" or not value.strip().isdigit():
        raise ValueError(f"board {board_id!r}: the only option is shards=N, got {options!r}")
    shards = int(value)
    if not 1 <= shards <= MAX_SHARDS:
        raise ValueError(f"board {board_id!r}: shards must be 1..{MAX_SHARDS}")
    return shards
