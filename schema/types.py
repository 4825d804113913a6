"""The object, input and enum types of the contract."""

from __future__ import annotations

import enum
from typing import Any

import strawberry
from strawberry.scalars import JSON

from schema.scalars import Long
from store import boards as board_values
from store.models import IncrementOutcome
from store.models import RankedPlayer as RankedPlayerValue

GLOBAL = strawberry.ID("global")
"""The board an operation or an increment uses when it names none (always configured)."""


@strawberry.enum(description="How often a board starts over. Periods are computed in UTC.")
class ResetPeriod(enum.Enum):
    NEVER = strawberry.enum_value("never", description="one period forever; its id is `all`")
    DAILY = strawberry.enum_value("daily", description="id like `2026-11-23`")
    WEEKLY = strawberry.enum_value("weekly", description="ISO week, id like `2026-W48`")
    MONTHLY = strawberry.enum_value(
        "monthly", description="id like `2026-11` (the default board resets monthly)"
    )

    @classmethod
    def of(cls, reset: board_values.ResetPeriod) -> ResetPeriod:
        """The GraphQL value of a board's reset period."""
        return cls(reset.value)


@strawberry.type(
    description=(
        "One player's standing. Ranks are 1-based standard competition ranks: players\n"
        "with equal scores share a rank and the next rank skips (1, 2, 2, 4).\n"
        "Within equal scores, lists order players by username ascending."
    )
)
class RankedPlayer:
    username: str
    score: Long
    rank: int
    top_percent: float = strawberry.field(
        description="100 * rank / playerCount of the period: 0.5 means the top half percent."
    )
    display_name: str | None = strawberry.field(
        default=None, description="Set with setPlayerProfile; null when never set."
    )
    metadata: JSON | None = strawberry.field(
        default=None,
        description=(
            "A JSON object of at most 1 KiB set with setPlayerProfile (country, avatar, ...); "
            "null when never set."
        ),
    )

    @classmethod
    def of(
        cls, player: RankedPlayerValue, display_name: str | None = None, metadata: Any = None
    ) -> RankedPlayer:
        """The GraphQL view of a standing (with its profile's fields when given)."""
        return cls(
            username=player.username,
            score=Long(player.score),
            rank=player.rank,
            top_percent=player.top_percent,
            display_name=display_name,
            metadata=metadata,
        )


@strawberry.type(description="What an increment did.")
class ScoreUpdate:
    username: str
    board: strawberry.ID
    period: str
    score: Long = strawberry.field(description="Total in the period after this increment.")
    rank: int
    applied: bool = strawberry.field(
        description=(
            "False when eventId was seen before: nothing changed, score and rank are current."
            " (Seen within the idempotency window: see ScoreIncrement.eventId.)"
        )
    )

    @classmethod
    def of(cls, outcome: IncrementOutcome) -> ScoreUpdate:
        """The GraphQL view of an increment's outcome."""
        increment = outcome.increment
        return cls(
            username=increment.username,
            board=strawberry.ID(increment.board),
            period=increment.period,
            score=Long(outcome.score),
            rank=outcome.rank,
            applied=outcome.applied,
        )


@strawberry.input
class ScoreIncrement:
    username: str
    delta: int
    board: strawberry.ID = GLOBAL
    event_id: str | None = strawberry.field(
        default=None,
        description=(
            "Idempotency key: an increment whose eventId was already applied is not applied again."
            " An eventId replayed within the idempotency window (at least"
            " LEADERBOARD_EVENT_ID_WINDOW_SECONDS, one day by default, whatever the board's"
            " period) is not applied again; after the window it is forgotten and a replay"
            " applies. Within the window, an eventId reused for a different increment (another"
            " player or delta) is refused with BAD_USER_INPUT."
        ),
    )


@strawberry.type(description="A change in one player's standing.")
class RankChange:
    username: str
    board: strawberry.ID
    period: str
    score: Long
    rank: int
    previous_rank: int | None = strawberry.field(
        description="Null when the player had no rank before (first score in the period)."
    )
    display_name: str | None = strawberry.field(
        default=None,
        description="The player's display name (setPlayerProfile), else the username.",
    )


@strawberry.type(description="What setScore did.")
class ScoreSubmission:
    username: str
    board: strawberry.ID
    period: str
    score: Long = strawberry.field(
        description="The player's score in the period after the submission (the kept one)."
    )
    rank: int
    improved: bool = strawberry.field(
        description=(
            "True when the submission changed the kept score (a BEST board keeps the better one)."
        )
    )
    applied: bool = strawberry.field(
        description=(
            "False when eventId was seen before: nothing changed."
            " (Seen within the idempotency window: see ScoreIncrement.eventId.)"
        )
    )

    @classmethod
    def of(cls, outcome: IncrementOutcome) -> ScoreSubmission:
        """The GraphQL view of a submission's outcome."""
        submission = outcome.increment
        return cls(
            username=submission.username,
            board=strawberry.ID(submission.board),
            period=submission.period,
            score=Long(outcome.score),
            rank=outcome.rank,
            improved=outcome.changed,
            applied=outcome.applied,
        )
