"""Plain values that cross the store boundary."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
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


@value_type
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


@value_type
class IncrementOutcome:
    """What one increment did to the live ranking."""

    increment: ScoreIncrement
    score: int
    rank: int
    applied: bool
    previous_score: int | None
    previous_rank: int | None


@value_type
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
