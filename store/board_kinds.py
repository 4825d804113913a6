"""The kinds of board: how it combines a player's submissions, which end ranks first, how
ties rank. Plain enums (standard library only), so that `store.boards` can carry them on
`Board` and `store.board_model` can hold the rules over them without importing each other
in a cycle."""

from __future__ import annotations

import enum


class UpdateRule(enum.Enum):
    """How a board combines a player's submissions in one period."""

    INCREMENT = "increment"
    """Add each delta (incrementScore)."""
    BEST = "best"
    """Keep the better of the kept score and a submission."""
    LATEST = "latest"
    """Keep the last submission."""


class SortOrder(enum.Enum):
    """Which end of the scores ranks first."""

    DESC = "desc"
    """Highest first (points)."""
    ASC = "asc"
    """Lowest first (race times, strokes)."""


class TieBreak(enum.Enum):
    """How equal scores rank."""

    SHARED = "shared"
    """Equal scores share a rank (1, 2, 2, 4), listed by username."""
    EARLIEST = "earliest"
    """Who reached the score first ranks higher; every rank is unique."""
