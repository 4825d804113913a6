"""`CoalescedCalls` logic, on a recording in-memory operation (the Redis proof is in
tests/store/redis/test_coalesced_increments.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from store.redis.coalescing import CoalescedCalls

pytestmark = pytest.mark.unit


class Refused(Exception):
    """A refusal that promises nothing was applied."""


class Lost(Exception):
    """A failure after which the outcome is unknown."""


class Abandoned(Exception):
    """The merged call was cancelled in flight."""


class RecordingOperation:
    """Doubles its items; refuses a batch holding a negative item; records every batch."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.gate: asyncio.Event | None = None
        self.lose = False
        self.on_batch: Callable[[list[int]], None] | None = None

    async def __call__(self, items: list[int]) -> list[int]:
        self.batches.append(list(items))
        if self.on_batch is not None:
            self.on_batch(items)
        if self.gate is not None:
            await self.gate.wait()
        if self.lose:
            raise Lost("connection lost")
        if any(item < 0 for item in items):
            raise Refused(f"negative item in {items}")
        return [item * 2 for item in items]


def coalesced(
    operation: RecordingOperation, *, max_items: int = 100, max_in_flight: int = 1
) -> CoalescedCalls[int, int]:
    return CoalescedCalls(
        operation,
        max_items=max_items,
        max_in_flight=max_in_flight,
        retry_alone=(Refused,),
        abandoned=lambda: Abandoned("cancelled in flight"),
    )


async def test_calls_of_one_turn_share_one_operation_in_submission_order() -> None:
    operation = RecordingOperation()
    calls = coalesced(operation)
    results = list(await asyncio.gather(calls([1, 2]), calls([3]), calls([4, 5, 6])))
    assert results == [[2, 4], [6], [8, 10, 12]]
    assert operation.batches == [[1, 2, 3, 4, 5, 6]]


async def test_a_lone_call_goes_alone() -> None:
    operation = RecordingOperation()
    calls = coalesced(operation)
    assert await calls([7]) == [14]
    assert await calls([8]) == [16]
    assert operation.batches == [[7], [8]]


async def test_calls_made_while_one_is_in_flight_join_the_next() -> None:
    operation = RecordingOperation()
    operation.gate = asyncio.Event()
    calls = coalesced(operation, max_in_flight=1)
    first = asyncio.ensure_future(calls([1]))
    await asyncio.sleep(0.01)
    later = [asyncio.ensure_future(calls([n])) for n in (2, 3, 4)]
    await asyncio.sleep(0.01)
    assert operation.batches == [[1]]
    operation.gate.set()
    assert await first == [2]
    assert [await call for call in later] == [[4], [6], [8]]
    assert operation.batches == [[1], [2, 3, 4]]


async def test_max_in_flight_calls_go_out_at_once() -> None:
    operation = RecordingOperation()
    operation.gate = asyncio.Event()
    calls = coalesced(operation, max_items=2, max_in_flight=2)
    pending = [asyncio.ensure_future(calls([n])) for n in range(1, 7)]
    await asyncio.sleep(0.01)
    assert operation.batches == [[1, 2], [3, 4]]
    operation.gate.set()
    assert [await call for call in pending] == [[2], [4], [6], [8], [10], [12]]
    assert operation.batches == [[1, 2], [3, 4], [5, 6]]


async def test_a_batch_bigger_than_max_items_is_never_split() -> None:
    operation = RecordingOperation()
    calls = coalesced(operation, max_items=3)
    results = list(await asyncio.gather(calls([1]), calls([2, 3, 4, 5]), calls([6])))
    assert results == [[2], [4, 6, 8, 10], [12]]
    assert operation.batches == [[1], [2, 3, 4, 5], [6]]


async def test_a_refusal_runs_each_call_alone_for_its_own_answer() -> None:
    operation = RecordingOperation()
    calls = coalesced(operation)
    results = await asyncio.gather(calls([1]), calls([-2, 3]), calls([4]), return_exceptions=True)
    assert results[0] == [2]
    assert isinstance(results[1], Refused)
    assert results[2] == [8]
    assert operation.batches == [[1, -2, 3, 4], [1], [-2, 3], [4]]


async def test_an_unknown_outcome_reaches_every_caller_and_is_never_retried() -> None:
    operation = RecordingOperation()
    operation.lose = True
    calls = coalesced(operation)
    results = await asyncio.gather(calls([1]), calls([2]), return_exceptions=True)
    assert all(isinstance(result, Lost) for result in results)
    assert operation.batches == [[1, 2]]


async def test_a_caller_that_gives_up_before_sending_sends_nothing() -> None:
    operation = RecordingOperation()
    operation.gate = asyncio.Event()
    calls = coalesced(operation, max_in_flight=1)
    first = asyncio.ensure_future(calls([1]))
    await asyncio.sleep(0.01)
    abandoned = asyncio.ensure_future(calls([2]))
    kept = asyncio.ensure_future(calls([3]))
    await asyncio.sleep(0.01)
    abandoned.cancel()
    operation.gate.set()
    assert await first == [2]
    assert await kept == [6]
    with pytest.raises(asyncio.CancelledError):
        await abandoned
    assert operation.batches == [[1], [3]]


async def test_a_caller_that_gives_up_in_flight_leaves_the_others_alone() -> None:
    operation = RecordingOperation()
    operation.gate = asyncio.Event()
    calls = coalesced(operation)
    leaving = asyncio.ensure_future(calls([1]))
    staying = asyncio.ensure_future(calls([2]))
    await asyncio.sleep(0.01)
    leaving.cancel()
    await asyncio.sleep(0.01)
    operation.gate.set()
    assert await staying == [4]
    assert leaving.cancelled()
    assert operation.batches == [[1, 2]]


async def test_drain_waits_for_everything_submitted() -> None:
    operation = RecordingOperation()
    operation.gate = asyncio.Event()
    calls = coalesced(operation, max_in_flight=1)
    pending = [asyncio.ensure_future(calls([n])) for n in (1, 2)]
    await asyncio.sleep(0.01)
    drained = asyncio.ensure_future(calls.drain())
    await asyncio.sleep(0.01)
    assert not drained.done()
    operation.gate.set()
    await asyncio.wait_for(drained, 1)
    assert all(call.done() for call in pending)


async def test_a_caller_that_gives_up_during_the_retries_is_not_retried() -> None:
    operation = RecordingOperation()
    calls = coalesced(operation)
    refused = asyncio.ensure_future(calls([-1]))
    leaving = asyncio.ensure_future(calls([2]))

    def leave_during_the_retry(items: list[int]) -> None:
        if items == [-1]:  # the refused call runs again alone: the other caller leaves
            leaving.cancel()

    operation.on_batch = leave_during_the_retry
    with pytest.raises(Refused):
        await refused
    with pytest.raises(asyncio.CancelledError):
        await leaving
    assert operation.batches == [[-1, 2], [-1]]


async def test_a_cancelled_drain_leaves_the_calls_in_flight_alone() -> None:
    operation = RecordingOperation()
    operation.gate = asyncio.Event()
    calls = coalesced(operation)
    pending = [asyncio.ensure_future(calls([n])) for n in (1, 2)]
    await asyncio.sleep(0.01)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(calls.drain(), 0.05)
    operation.gate.set()
    assert [await call for call in pending] == [[2], [4]]


async def test_callers_of_a_call_cancelled_in_flight_hear_it_was_abandoned() -> None:
    operation = RecordingOperation()
    operation.gate = asyncio.Event()
    calls = coalesced(operation)
    pending = [asyncio.ensure_future(calls([n])) for n in (1, 2)]
    await asyncio.sleep(0.01)
    for task in list(calls._in_flight):
        task.cancel()
    results = await asyncio.wait_for(asyncio.gather(*pending, return_exceptions=True), 1)
    assert all(isinstance(result, Abandoned) for result in results)


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        coalesced(RecordingOperation(), max_items=0)
