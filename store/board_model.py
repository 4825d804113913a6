"""What a board is (update rule, sort order, tie-break, zone, caps) and the pure rules it follows.

Every backend (Redis scripts, the embedded store, a rebuild from the history) must agree
with the functions here; they are the written-out semantics the tests compare against.
Standard library only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

# Re-exported: the kinds were first defined here, and callers import them from here.
from store.board_kinds import SortOrder as SortOrder
from store.board_kinds import TieBreak as TieBreak
from store.board_kinds import UpdateRule as UpdateRule
from store.boards import MAX_SHARDS, ResetPeriod
from store.models import MAX_EXACT_SCORE
from store.periods import UnknownTimeZone, zone_named

BOARD_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}", re.ASCII)


@dataclass(frozen=True, slots=True)
class BoardSpec:
    """A board as declared or created: everything that decides how it ranks and what it takes.

    Only the caps and `active` may change after creation; the rest decides how stored
    scores read, so changing it would corrupt live periods.
    """

    id: str
    reset: ResetPeriod = ResetPeriod.MONTHLY
    update_rule: UpdateRule = UpdateRule.INCREMENT
    sort_order: SortOrder = SortOrder.DESC
    tie_break: TieBreak = TieBreak.SHARED
    time_zone: str = "UTC"
    min_score: int | None = None
    max_score: int | None = None
    max_delta: int | None = None
    active: bool = True
    shards: int = 1


def spec_problems(spec: BoardSpec) -> list[str]:
    """Every reason `spec` is not a valid board, as messages for the client (empty: valid)."""
    problems: list[str] = []
    if not BOARD_ID.fullmatch(spec.id):
        problems.append("id must be 1..64 of letters, digits, '_', '-', '.'")
    try:
        zone_named(spec.time_zone)
    except UnknownTimeZone as error:
        problems.append(f"timeZone: {error}")
    for name, value in (("minScore", spec.min_score), ("maxScore", spec.max_score)):
        if value is not None and abs(value) > MAX_EXACT_SCORE:
            problems.append(f"{name} must be within ±{MAX_EXACT_SCORE}")
    if (
        spec.min_score is not None
        and spec.max_score is not None
        and spec.min_score > spec.max_score
    ):
        problems.append(
            f"minScore ({spec.min_score}) must not be greater than maxScore ({spec.max_score})"
        )
    if spec.max_delta is not None:
        if spec.update_rule is not UpdateRule.INCREMENT:
            problems.append("maxDelta applies to INCREMENT boards only")
        if not 1 <= spec.max_delta <= MAX_EXACT_SCORE:
            problems.append(f"maxDelta must be within 1..{MAX_EXACT_SCORE}")
    if not 1 <= spec.shards <= MAX_SHARDS:
        problems.append(f"shards must be 1..{MAX_SHARDS}")
    return problems


# The rules. `kept` is the player's score in the period before a write (None: no score yet).


def ranks_before(order: SortOrder, score: int, other: int) -> bool:
    """Whether `score` ranks strictly ahead of `other` on a board sorted by `order`."""
    return score > other if order is SortOrder.DESC else score < other


def kept_score(rule: UpdateRule, order: SortOrder, kept: int | None, submitted: int) -> int:
    """The player's score after a write of `submitted` (a delta on INCREMENT boards)."""
    if kept is None:
        return submitted
    match rule:
        case UpdateRule.INCREMENT:
            return kept + submitted
        case UpdateRule.BEST:
            return submitted if ranks_before(order, submitted, kept) else kept
        case UpdateRule.LATEST:
            return submitted


def changes_kept_score(
    rule: UpdateRule, order: SortOrder, kept: int | None, submitted: int
) -> bool:
    """Whether the write changes the kept score: `improved` of setScore, and what moves the
    EARLIEST instant (a later equal score keeps the player where they were)."""
    return kept is None or kept_score(rule, order, kept, submitted) != kept


def delta_problem(spec: BoardSpec, delta: int, service_max_delta: int) -> str | None:
    """Why one increment is refused before anything is read (None: it may proceed)."""
    if delta == 0:
        return "delta must not be zero"
    bound = spec.max_delta if spec.max_delta is not None else service_max_delta
    if abs(delta) > bound:
        return f"delta must be within ±{bound} on board {spec.id!r}"
    return None


def submission_problem(spec: BoardSpec, score: int) -> str | None:
    """Why a setScore submission is refused before anything is read (None: it may proceed)."""
    return _outside_caps(spec, score, "score")


def total_problem(spec: BoardSpec, total: int) -> str | None:
    """Why a new kept score or INCREMENT total is refused (None: within the caps)."""
    return _outside_caps(spec, total, "the total" if _is_increment(spec) else "score")


def _is_increment(spec: BoardSpec) -> bool:
    return spec.update_rule is UpdateRule.INCREMENT


def _outside_caps(spec: BoardSpec, value: int, what: str) -> str | None:
    if abs(value) > MAX_EXACT_SCORE:
        return f"{what} would leave ±{MAX_EXACT_SCORE} on board {spec.id!r}"
    if spec.min_score is not None and value < spec.min_score:
        return f"{what} {value} is below minScore {spec.min_score} of board {spec.id!r}"
    if spec.max_score is not None and value > spec.max_score:
        return f"{what} {value} is above maxScore {spec.max_score} of board {spec.id!r}"
    return None


def replay(
    rule: UpdateRule, order: SortOrder, writes: Iterable[tuple[int, int]]
) -> tuple[int, int] | None:
    """A player's kept score and the instant it was reached, from their applied writes
    `(instant, value)` in the order they were applied (ascending instants): what a rebuild
    from the history computes. None when there are no writes."""
    kept: int | None = None
    reached = 0
    for instant, value in writes:
        if changes_kept_score(rule, order, kept, value):
            reached = instant
        kept = kept_score(rule, order, kept, value)
    return None if kept is None else (kept, reached)
