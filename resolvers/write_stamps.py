"""What the service adds to a write on its way to the stores: the event id of a write that
has no client eventId, a writer's call number, and the history event of an applied write.

May import `store.models` only.
"""

from __future__ import annotations

import dataclasses
import itertools
import secrets
from collections.abc import Sequence

from store.models import IncrementOutcome, ScoreEvent, ScoreIncrement


class WriteStamps:
    """This instance's generated event ids and writer call numbers."""

    def __init__(self) -> None:
        # A random instance prefix and a counter: unique across instances and restarts,
        # cheaper than a uuid4 per event. 64 random bits in 11 base64url characters, not 16
        # hex digits: every generated id is 5 bytes shorter in the history's row and unique
        # key, which cost MariaDB ~5 % less CPU per stored row (benchmarks/history_rows.py).
        self._prefix = secrets.token_urlsafe(8)
        self._events = itertools.count()
        self._calls = itertools.count(1)

    def event_id(self) -> str:
        """A fresh generated event id ('~' is outside the client alphabet, so it never
        meets a client's id)."""
        return f"~{self._prefix}{next(self._events):x}"

    def of_writer(
        self, increments: Sequence[ScoreIncrement], writer: tuple[str, int]
    ) -> list[ScoreIncrement]:
        """The call's increments with its writer and sequence, and a call number that tells
        this call from any other merged into the same script call (ScoreIncrement.call)."""
        call = next(self._calls)
        return [
            dataclasses.replace(increment, writer_id=writer[0], sequence=writer[1], call=call)
            for increment in increments
        ]


def history_event(
    increment: ScoreIncrement,
    created_at_ms: int,
    applied_at_us: int | None,
    outcome: IncrementOutcome,
) -> ScoreEvent:
    """The history row of an applied increment (or submission)."""
    # Positional, in ScoreEvent's field order (store/models.py): this runs once per ingested
    # event, and keywords cost 2.5x (tests/resolvers/test_write_stamps.py checks each field).
    return ScoreEvent(
        increment.board,
        increment.period,
        increment.username,
        increment.delta,
        increment.event_id,
        increment.client_event_id,
        created_at_ms,
        # presence: the player had no score before it: a rebuild counts the player present
        # again after a removal (docs/moderation.md).
        1 if outcome.previous_score is None else 0,
        applied_at_us,
        outcome.id_life,
        increment.writer_id,
        None if increment.writer_id is None else increment.sequence,
    )
