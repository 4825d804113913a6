"""Errors the stores raise; the API layer maps each to a GraphQL error code."""

from __future__ import annotations


class StoreError(Exception):
    """Base class of every error raised by the stores."""


class StoreUnavailable(StoreError):
    """A backing service (Redis, MySQL, SQLite) did not answer; nothing was applied."""


class RankingNotLoaded(StoreError):
    """The ranking of a board's period is not in the live store yet and must be rebuilt first.

    Raised when Redis was restarted, flushed or failed over and lost the ranking,
    and for a period never loaded since this store started.
    """

    def __init__(self, board: str, period: str) -> None:
        super().__init__(f"ranking of {board}/{period} is not loaded")
        self.board = board
        self.period = period


class ScoreOutOfRange(StoreError):
    """An increment would take a total outside the exactly representable range; nothing applied."""

    def __init__(self, username: str, board: str) -> None:
        super().__init__(
            f"the score of {username!r} on {board!r} would leave the range +-(2^53 - 1)"
        )
        self.username = username
        self.board = board
