"""The rows of a final period's standings: folded scores put in the board's order.

The finalizer folds a period's history exactly as a rebuild does (`RankingRecovery.fold`:
INCREMENT boards sum, with removals and bans honoured; BEST and LATEST boards replay each
player's writes in the order applied), so a frozen period reads what its live ranking read
at the end. This module orders those scores the way the live rankings do
(`store.tiebreak.ranks_ahead`): better score first (highest on DESC boards, lowest on
ASC), then on EARLIEST boards the earlier instant the score was reached, then the
username (code points, i.e. UTF-8 bytes, which `utf8mb4_bin` and SQLite's BINARY compare
alike). Ranks are competition ranks (1, 2, 2, 4) on SHARED boards, the position on
EARLIEST ones; `position` is 1..N and unique.

Standard library and `store.board_kinds` only: pure, unit-tested without a database.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple

from store.board_kinds import SortOrder, TieBreak


class FrozenRow(NamedTuple):
    """One player of a final period, as `period_standings` stores it."""

    position: int
    username: str
    score: int
    rank: int
    reached_us: int | None
    """When the player reached the score (EARLIEST boards), else None."""


def sign(order: SortOrder) -> int:
    """Stored order score = sign * score: ascending stored order is the board's order."""
    return -1 if order is SortOrder.DESC else 1


def ranked(
    order: SortOrder,
    tie_break: TieBreak,
    scores: Iterable[tuple[str, int]],
    instants: Mapping[str, int] | None,
) -> list[FrozenRow]:
    """The standings rows of folded `scores` (username, score), best first; `instants`
    says when each player reached its score (read on EARLIEST boards only)."""
    earliest = tie_break is TieBreak.EARLIEST
    factor = sign(order)
    reached = instants or {}
    entries = sorted(
        (factor * score, reached.get(username, 0) if earliest else 0, username, score)
        for username, score in scores
    )
    rows: list[FrozenRow] = []
    rank = 0
    for position, (_, instant, username, score) in enumerate(entries, 1):
        if earliest or not rows or score != rows[-1].score:
            rank = position
        rows.append(FrozenRow(position, username, score, rank, instant if earliest else None))
    return rows


def order_key(order: SortOrder, tie_break: TieBreak, row: FrozenRow) -> tuple[int, str]:
    """A row's place in the order as the live rankings write it in a cursor: (stored score,
    member), the member behind its instant (16 hex digits) on EARLIEST boards."""
    stored = sign(order) * row.score
    if tie_break is TieBreak.EARLIEST:
        return stored, f"{row.reached_us or 0:016x}{row.username}"
    return stored, row.username


def place(tie_break: TieBreak, key: tuple[int, str]) -> tuple[int, int, str]:
    """(stored score, instant, username) of a cursor's order key; a member that is not of
    this tie-break (a forged cursor) is still a place in the order."""
    stored, member = key
    if tie_break is TieBreak.EARLIEST:
        # As the embedded store reads a cursor (store/embedded_rankings.py).
        try:
            return stored, int(member[:16], 16), member[16:]
        except ValueError:
            pass
    return stored, 0, member
