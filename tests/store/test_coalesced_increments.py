"""Concurrent increments on one Redis share script calls, and each caller still gets
exactly what its own call, run alone in the same order, would have answered."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta

import pytest

from store.errors import RankingNotLoaded, ScoreOutOfRange
from store.models import MAX_EXACT_SCORE, IncrementOutcome, ScoreIncrement
from store.redis_ranking import RedisRankingStore
from tests.store.test_ranking_contract import BOARDS, GLOBAL, PERIOD, inc
from tests.support.shared_services import REDIS_URL, delete_prefix

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


@pytest.fixture
async def prefixes() -> AsyncIterator[tuple[str, str]]:
    """Two fresh key prefixes on the shared Redis: one for each way of running the calls."""
    pair = (f"lbtest-{secrets.token_hex(6)}", f"lbtest-{secrets.token_hex(6)}")
    yield pair
    for prefix in pair:
        await delete_prefix(prefix)


async def loaded_store(prefix: str, observer: ScriptCalls) -> RedisRankingStore:
    store = RedisRankingStore.from_url(
        REDIS_URL,
        key_prefix=prefix,
        boards=BOARDS,
        retention=timedelta(days=35),
        observer=observer,
    )
    await store.load(GLOBAL, PERIOD, [("alice", 50), ("bob", 40), ("max", MAX_EXACT_SCORE - 5)], [])
    return store


def calls() -> list[list[ScoreIncrement]]:
    """Calls that interact: shared players, a repeated client event id, a refusal for a
    total out of range and one for a period that is not loaded, a batch of several."""
    return [
        [inc("carol", 45)],
        [inc("bob", 20, "match-1:bob")],
        [inc("max", 10)],  # beyond 2^53 - 1: refused
        [inc("bob", 20, "match-1:bob")],  # a retry: counts once
        [inc("dave", 5), inc("carol", 1), inc("alice", -10)],
        [inc("erin", 7, period=UNLOADED)],  # not loaded: refused
        [inc("alice", 30)],
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
    except (RankingNotLoaded, ScoreOutOfRange) as error:
        return answer(error)


async def test_concurrent_calls_share_script_calls_and_answer_as_if_alone(
    prefixes: tuple[str, str],
) -> None:
    serial_calls, concurrent_calls = ScriptCalls(), ScriptCalls()
    serial = await loaded_store(prefixes[0], serial_calls)
    concurrent = await loaded_store(prefixes[1], concurrent_calls)
    batches = calls()
    try:
        expected = [await run_alone(serial, batch) for batch in batches]
        results = await asyncio.gather(
            *(concurrent.increment(batch) for batch in batches), return_exceptions=True
        )
        assert [answer(result) for result in results] == expected
        assert expected[2] == "ScoreOutOfRange"
        assert expected[5] == "RankingNotLoaded"
        assert expected[3][0][3] is False  # the retried event id did not count again
        assert serial_calls.increments == len(batches)
        # One merged call, refused (one period is not loaded), then each call alone;
        # without the refusals it is one call: see the next test.
        assert concurrent_calls.increments == 1 + len(batches)
        assert await concurrent.totals(GLOBAL, PERIOD) == await serial.totals(GLOBAL, PERIOD)
    finally:
        await serial.close()
        await concurrent.close()


async def test_concurrent_calls_without_refusals_are_one_script_call(
    prefixes: tuple[str, str],
) -> None:
    serial_calls, concurrent_calls = ScriptCalls(), ScriptCalls()
    serial = await loaded_store(prefixes[0], serial_calls)
    concurrent = await loaded_store(prefixes[1], concurrent_calls)
    batches = [batch for index, batch in enumerate(calls()) if index not in (2, 5)]
    try:
        expected = [await run_alone(serial, batch) for batch in batches]
        results = await asyncio.gather(*(concurrent.increment(batch) for batch in batches))
        assert [answer(result) for result in results] == expected
        assert concurrent_calls.increments == 1
        assert await concurrent.top(GLOBAL, PERIOD, 30, 0) == await serial.top(
            GLOBAL, PERIOD, 30, 0
        )
    finally:
        await serial.close()
        await concurrent.close()
