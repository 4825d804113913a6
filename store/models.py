"""Plain values that cross the store boundary."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar, dataclass_transform, overload

_T = TypeVar("_T")

MAX_EXACT_SCORE = 2**53 - 1
"""Largest absolute total: doubles (Redis scores, JSON numbers) are exact up to here."""
REMOVAL_ID_PREFIX = "!"
"""The event ids of removal rows in the history begin with it: outside the client alphabet
and the generated ids' '~', so a removal id never meets another event's."""


@overload
def value_type(cls: type[_T], /) -> type[_T]: ...


@overload
def value_type(*, kw_only: bool = True) -> Callable[[type[_T]], type[_T]]: ...


@dataclass_transform(frozen_default=True, kw_only_default=True)
def value_type(
    cls: type[_T] | None = None, /, *, kw_only: bool = True
) -> type[_T] | Callable[[type[_T]], type[_T]]:
    """A slotted dataclass built by keyword, that the type checker holds frozen (equal and
    hashable by value).

    By keyword: neighbouring fields of one type (board, period, username are all `str`)
    cannot be swapped by a call that lists them in the wrong order.
    """

    # Several of these are built per ingested event, and a frozen dataclass's __init__ pays
    # an object.__setattr__ per field (about 3x the cost of plain slot stores); immutability
    # is enforced by mypy instead, and the hash stays the one a frozen dataclass has.
    def make(cls: type[_T]) -> type[_T]:
        return dataclass(slots=True, unsafe_hash=True, kw_only=kw_only)(cls)

    return make if cls is None else make(cls)


@dataclass(frozen=True, slots=True, kw_only=True)
class RankedPlayer:
    """A player's standing: standard competition rank (ties share a rank, the next one skips)."""

    username: str
    score: int
    rank: int
    # Appended with a default and left out of equality: it describes the period at the
    # moment of the read (for topPercent), not the standing; every read of every backend
    # sets it in the same script or pipeline as the ranks (the contract suite checks).
    player_count: int = field(default=0, compare=False)
    """How many players had a score in the period when this standing was read."""

    @property
    def top_percent(self) -> float:
        """100 x rank / playerCount: 0.5 means the top half percent."""
        # A standing always counts its own player, so the count is at least the rank; the
        # guard only keeps a value built without a count (in a test) from dividing by 0.
        return 100.0 * self.rank / max(self.player_count, self.rank)


# kw_only=False: resolvers/service.py builds one per ingested event positionally (by keyword
# it measured ~0.4 us against ~0.2 us, timeit, Python 3.11); elsewhere by keyword.
@value_type(kw_only=False)
class ScoreIncrement:
    """One increment to apply to a board's period.

    `event_id` is always set: the client's idempotency key when it sent one
    (`client_event_id` true), otherwise an id the service generated so that a
    replayed history batch can never insert the same event twice.
    """

    board: str
    period: str
    username: str
    delta: int
    event_id: str
    client_event_id: bool
    writer_id: str | None = None
    """The call's writerId, when it sent one: idempotency per writer (docs/reliability.md).
    Every increment of the call carries it and `sequence`."""
    sequence: int = 0
    """The call's sequence number for `writer_id` (0..2^53 - 1; unused without a writer)."""
    call: int = field(default=0, compare=False)
    """Tells the calls of a merged batch apart (store/redis/coalescing.py): the increments of
    one call share it, so two calls with the same writer and sequence are two calls (the
    second a replay), not one. Not part of the increment's value."""


@value_type
class IncrementOutcome:
    """What one increment did to the live ranking."""

    increment: ScoreIncrement
    score: int
    rank: int
    applied: bool
    previous_score: int | None
    previous_rank: int | None
    instant: int | None = None
    """When the write was applied (µs since the Unix epoch, strictly increasing per ranking)
    on boards whose history needs the order (BEST, LATEST, EARLIEST); None elsewhere."""
    reached_before: int | None = field(default=None, compare=False)
    """On EARLIEST boards of the Redis store, the instant the player had reached
    `previous_score` (its member before the write): what a sharded board's board-wide ranks
    are derived from (store/redis/ranks.py `replay_unique_ranks`). Not part of the outcome's
    value: None elsewhere."""
    id_life: int = field(default=0, compare=False)
    """For an applied client event id, the idempotency window's bucket the store recorded
    it in (its clock // the window): the history row's `id_life`, which a rebuild restores
    the window's ids by. 0 otherwise. Not part of the outcome's value."""

    @property
    def changed(self) -> bool:
        """Whether the kept score changed (a first score counts): `ScoreSubmission.improved`,
        and whether the write is published."""
        return self.applied and (self.previous_score is None or self.score != self.previous_score)


@value_type
class RemovedScore:
    """What a removal took out of a live ranking (`RankingModeration.remove`)."""

    score: int
    instant: int | None = None
    """The removal's instant on the ranking's clock (as `IncrementOutcome.instant`) on boards
    that keep instants: the removal row's `applied_at_us`, so that a rebuild's replay starts
    the player afresh exactly there; None elsewhere."""


# kw_only=False: resolvers/write_stamps.py builds one per ingested event positionally (by
# keyword it measured ~0.63 us against ~0.24 us, timeit, Python 3.11); elsewhere by keyword.
@value_type(kw_only=False)
class ScoreEvent:
    """One applied increment as the durable history stores it."""

    board: str
    period: str
    username: str
    delta: int
    event_id: str
    client_event_id: bool
    created_at_ms: int
    presence: int = 0
    """+1 when the event gave the player a score they did not have (the live ranking said so),
    -1 for a removal (event id '!...', delta = minus the total removed), else 0: a rebuild
    keeps a removed player only while these sum above 0 (docs/moderation.md)."""
    applied_at_us: int | None = None
    """`IncrementOutcome.instant`: the order a rebuild replays BEST and LATEST writes in, and
    the instant an EARLIEST board ranks by."""
    id_life: int = 0
    """`IncrementOutcome.id_life`: 0 unless a client event id. Part of the history's unique
    key, so a client id used again after the window (a new bucket) is a new row."""
    writer_id: str | None = None
    """`ScoreIncrement.writer_id`: a rebuild restores each writer's highest `sequence`."""
    sequence: int | None = None
    """`ScoreIncrement.sequence` of a writer's call; None without a writer."""


@value_type
class ScoreChange:
    """An applied increment as published to live subscribers (Redis pub/sub or in-process)."""

    board: str
    period: str
    username: str
    previous_score: int | None
    score: int
    previous_rank: int | None
    rank: int
    removed: bool = False
    """The player left the ranking (removePlayer, banPlayer, erasePlayer): `score` and `rank`
    are then the ones it had, and everyone below moves up one."""


PageKey = tuple[int, str]
"""A place in a ranking's order, as the sorted set holds it: (stored score, member). Stored
scores ascend in the board's order and equal ones order by member bytes, so a page after a
key starts right after it whether or not its player still stands there."""


@value_type
class RankingPage:
    """One page of a ranking: its players best first, each one's order key (for cursors),
    and whether more follow."""

    players: tuple[RankedPlayer, ...]
    keys: tuple[PageKey, ...]
    total: int
    """Players with a score in the period."""
    has_next: bool


@value_type
class PlayerProfile:
    """What a player shows on every board: a display name and metadata (a JSON object,
    kept as its serialized text); None where never set or cleared."""

    display_name: str | None
    metadata: str | None


@value_type
class StoredProfile:
    """A player's profile as the source of truth holds it, with its version (grows on
    every change, so a cache keeps the newest of two racing copies); version 0: none."""

    version: int
    profile: PlayerProfile


NO_PROFILE = PlayerProfile(display_name=None, metadata=None)
"""The profile of a player who never set one."""


class _Leave:
    """The type of `LEAVE`."""

    def __repr__(self) -> str:
        return "LEAVE"


LEAVE = _Leave()
"""A profile field a change leaves as it is (None clears it)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PeriodResult:
    """The final standings of an ended period: its player count and best players (exact)."""

    board: str
    period: str
    player_count: int
    top: tuple[RankedPlayer, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class PeriodSummary:
    """One period of a board that has scores: when it runs and whether it is final."""

    board: str
    period: str
    starts_at: str
    ends_at: str | None
    player_count: int
    final: bool
