"""Errors the stores raise; the API layer maps each to a GraphQL error code."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from store.models import IncrementOutcome


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


class ScoreBeyondCap(StoreError):
    """A write would take a kept score (an INCREMENT board's total) outside the board's
    minScore..maxScore; nothing of the batch applied."""

    def __init__(
        self, username: str, board: str, score: int, *, below: bool, bound: int, total: bool
    ) -> None:
        what = "the total" if total else "the score"
        side = f"below minScore {bound}" if below else f"above maxScore {bound}"
        super().__init__(f"{what} of {username!r} on board {board!r} would be {score}, {side}")
        self.username = username
        self.board = board


class EventIdReused(StoreError):
    """An increment names an event id already bound to a different increment (another
    player or delta): a client's mistake, refused like Stripe's reused idempotency keys;
    nothing of the batch applied."""

    def __init__(self, event_id: str) -> None:
        super().__init__("eventId already used for a different increment")
        self.event_id = event_id


class PartiallyApplied(StoreError):
    """A batch spread over several Redis Cluster slots failed part-way (a node failed or
    lost its data between the check and the writes): `outcomes` were applied, the rest not."""

    def __init__(self, outcomes: list[IncrementOutcome], cause: StoreError) -> None:
        super().__init__(f"{len(outcomes)} increments applied before: {cause}")
        self.outcomes = outcomes
        self.cause = cause
