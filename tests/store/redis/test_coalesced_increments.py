"""Concurrent increments on one Redis share script calls, and each caller still gets
exactly what its own call, run alone in the same order, would have answered."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta

import pytest

from store.errors import EventIdReused, RankingNotLoaded, ScoreOutOfRange
from store.models import MAX_EXACT_SCORE, IncrementOutcome, ScoreIncrement
from store.redis import RedisRankingStore
from tests.support.ranking import BOARDS, GLOBAL, PERIOD, inc
from tests.support.shared_services import REDIS_URL, delete_prefix

pytestmark = pytest.mark.integration

UNLOADED = "2026-01"

Answer = list[tuple[str, int, int, bool, int | None, int | None]] | str


class ScriptCalls:
    """Counts the store's Redis script calls (its observer)."""

    def __init__(self) -> None:
        self.increments = 0

    def observe_store(
        self, store: str, operation: str, seconds: float, *, failed: bool = False
    ) -> None:
        if store == "redis" and operation == "increment":
            self.increments += 1


class Observed:
    """A loaded store and the script calls it made."""

    def __init__(self, store: RedisRankingStore, calls: ScriptCalls) -> None:
        self.store = store
        self.calls = calls


@pytest.fixture
async def serial_and_concurrent() -> AsyncIterator[tuple[Observed, Observed]]:
    """Two stores with the same loaded period under fresh key prefixes on the shared Redis:
    one for running the calls one by one, one for running them all at once."""
    pair = []
    for _ in range(2):
        prefix = f"lbtest-{secrets.token_hex(6)}"
        calls = ScriptCalls()
        store = RedisRankingStore.from_url(
            REDIS_URL,
            key_prefix=prefix,
            boards=BOARDS,
            retention=timedelta(days=35),
            observer=calls,
        )
        await store.load(
            GLOBAL, PERIOD, [("alice", 50), ("bob", 40), ("max", MAX_EXACT_SCORE - 5)], []
        )
        pair.append((prefix, Observed(store, calls)))
    yield pair[0][1], pair[1][1]
    for prefix, observed in pair:
        await observed.store.close()
        await delete_prefix(prefix)


def calls() -> list[list[ScoreIncrement]]:
    """Calls that interact: shared players, a repeated client event id, a refusal for a
    total out of range, one for a period that is not loaded and one for an event id
    reused for another player, a batch of several."""
    return [
        [inc("carol", 45)],
        [inc("bob", 20, "match-1:bob")],
        [inc("max", 10)],  # beyond 2^53 - 1: refused
        [inc("bob", 20, "match-1:bob")],  # a retry: counts once
        [inc("dave", 5), inc("carol", 1), inc("alice", -10)],
        [inc("erin", 7, period=UNLOADED)],  # not loaded: refused
        [inc("alice", 30)],
        [inc("carol", 20, "match-1:bob")],  # bob's event id for carol: refused
        *([inc(f"p{number}", number)] for number in range(20)),
    ]


def answer(result: list[IncrementOutcome] | BaseException) -> Answer:
    if isinstance(result, BaseException):
        return type(result).__name__
    return [
        (
            outcome.increment.username,
            outcome.score,
            outcome.rank,
            outcome.applied,
            outcome.previous_score,
            outcome.previous_rank,
        )
        for outcome in result
    ]


async def run_alone(store: RedisRankingStore, batch: Sequence[ScoreIncrement]) -> Answer:
    try:
        return answer(await store.increment(batch))
    except (RankingNotLoaded, ScoreOutOfRange, EventIdReused) as error:
        return answer(error)


async def test_concurrent_calls_share_script_calls_and_answer_as_if_alone(
    serial_and_concurrent: tuple[Observed, Observed],
) -> None:
    serial, concurrent = serial_and_concurrent
    batches = calls()
    expected = [await run_alone(serial.store, batch) for batch in batches]
    results = await asyncio.gather(
        *(concurrent.store.increment(batch) for batch in batches), return_exceptions=True
    )
    assert [answer(result) for result in results] == expected
    assert expected[2] == "ScoreOutOfRange"
    assert expected[5] == "RankingNotLoaded"
    assert expected[7] == "EventIdReused"
    assert expected[3][0][3] is False  # the retried event id did not count again
    assert serial.calls.increments == len(batches)
    # One merged call, refused (one period is not loaded), then each call alone; without
    # the refusals it is one call: see the next test.
    assert concurrent.calls.increments == 1 + len(batches)
    assert await concurrent.store.totals(GLOBAL, PERIOD) == await serial.store.totals(
        GLOBAL, PERIOD
    )


async def test_concurrent_calls_without_refusals_are_one_script_call(
    serial_and_concurrent: tuple[Observed, Observed],
) -> None:
    serial, concurrent = serial_and_concurrent
    batches = [batch for index, batch in enumerate(calls()) if index not in (2, 5, 7)]
    expected = [await run_alone(serial.store, batch) for batch in batches]
    results = await asyncio.gather(*(concurrent.store.increment(batch) for batch in batches))
    assert [answer(result) for result in results] == expected
    assert concurrent.calls.increments == 1
    assert await concurrent.store.top(GLOBAL, PERIOD, 30, 0) == await serial.store.top(
        GLOBAL, PERIOD, 30, 0
    )
