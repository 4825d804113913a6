"""Plain values that cross the store boundary."""

from __future__ import annotations

from dataclasses import dataclass

MAX_EXACT_SCORE = 2**53 - 1
"""Largest absolute total: doubles (Redis scores, JSON numbers) are exact up to here."""


@dataclass(frozen=True, slots=True)
class RankedPlayer:
    """A player's standing: standard competition rank (ties share a rank, the next one skips)."""

    username: str
    score: int
    rank: int


@dataclass(frozen=True, slots=True)
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


@dataclass(frozen=True, slots=True)
class IncrementOutcome:
    """What one increment did to the live ranking."""

    increment: ScoreIncrement
    score: int
    rank: int
    applied: bool
    previous_score: int | None
    previous_rank: int | None


@dataclass(frozen=True, slots=True)
class ScoreEvent:
    """One applied increment as the durable history stores it."""

    board: str
    period: str
    username: str
    delta: int
    event_id: str
    client_event_id: bool
    created_at_ms: int


@dataclass(frozen=True, slots=True)
class ScoreChange:
    """An applied increment as published to live subscribers (Redis pub/sub or in-process)."""

    board: str
    period: str
    username: str
    previous_score: int | None
    score: int
    previous_rank: int | None
    rank: int
