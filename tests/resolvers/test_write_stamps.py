"""What the service adds to a write: generated event ids, writer call numbers, history events."""

from __future__ import annotations

import pytest

from resolvers.write_stamps import WriteStamps, history_event
from store.models import IncrementOutcome, ScoreEvent, ScoreIncrement

pytestmark = pytest.mark.unit


def increment(username: str = "ana", *, writer: str | None = None) -> ScoreIncrement:
    return ScoreIncrement(
        board="global",
        period="all",
        username=username,
        delta=3,
        event_id="e1",
        client_event_id=True,
        writer_id=writer,
        sequence=7 if writer else 0,
    )


def test_generated_ids_are_outside_the_client_alphabet_fixed_length_and_unique() -> None:
    first, second = WriteStamps(), WriteStamps()
    ids = [stamps.event_id() for stamps in (first, second) for _ in range(300)]
    assert len(set(ids)) == len(ids)
    assert all(event_id.startswith("~") for event_id in ids)
    # The instance prefix has one length: ids of one counter value are as long everywhere.
    assert len(first.event_id()) == len(second.event_id())


def test_each_writer_call_has_its_own_call_number_shared_by_its_increments() -> None:
    stamps = WriteStamps()
    one = stamps.of_writer([increment("ana"), increment("bo")], ("server-1", 41))
    two = stamps.of_writer([increment("ana")], ("server-1", 42))
    assert {item.call for item in one} == {one[0].call}
    assert two[0].call != one[0].call
    assert [(item.writer_id, item.sequence) for item in one + two] == [
        ("server-1", 41),
        ("server-1", 41),
        ("server-1", 42),
    ]


@pytest.mark.parametrize("previous", [None, 5])
@pytest.mark.parametrize("writer", [None, "server-1"])
def test_the_history_event_carries_presence_life_and_writer(
    previous: int | None, writer: str | None
) -> None:
    item = increment(writer=writer)
    outcome = IncrementOutcome(
        increment=item,
        score=(previous or 0) + 3,
        rank=1,
        applied=True,
        previous_score=previous,
        previous_rank=None if previous is None else 2,
        id_life=12,
    )
    event = history_event(item, 1_000, 77, outcome)
    assert (event.username, event.delta, event.event_id, event.created_at_ms) == (
        "ana",
        3,
        "e1",
        1_000,
    )
    assert event.applied_at_us == 77
    assert event.presence == (1 if previous is None else 0)
    assert event.id_life == 12
    assert (event.writer_id, event.sequence) == (writer, 7 if writer else None)
    # Every field, by name: history_event builds the event positionally.
    assert event == ScoreEvent(
        board="global",
        period="all",
        username="ana",
        delta=3,
        event_id="e1",
        client_event_id=True,
        created_at_ms=1_000,
        presence=1 if previous is None else 0,
        applied_at_us=77,
        id_life=12,
        writer_id=writer,
        sequence=7 if writer else None,
    )
