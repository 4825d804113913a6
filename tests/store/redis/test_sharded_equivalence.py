"""A sharded board answers exactly as the same board unsharded, on random data (real Redis).

Scores come from a narrow range, so ties (the hard part of merging shards) are common;
usernames include non-ASCII letters, whose byte order Redis uses for ties.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from store.boards import Board, ResetPeriod
from store.errors import EventIdReused
from store.models import IncrementOutcome, ScoreIncrement
from store.redis import RedisRankingStore
from tests.support.shared_services import REDIS_URL, delete_prefix

pytestmark = pytest.mark.property

BOARD = "global"
PERIOD = "2026-05"

usernames = st.text(alphabet="abcxyzé_Ω", min_size=1, max_size=4)
totals = st.dictionaries(usernames, st.integers(-4, 4), max_size=40)
increments = st.lists(
    st.tuples(usernames, st.integers(-3, 3).filter(bool), st.booleans()), max_size=12
)


def store(prefix: str, shards: int) -> RedisRankingStore:
    """A store on the shared Redis whose global board has `shards` shards."""
    return RedisRankingStore.from_url(
        REDIS_URL,
        key_prefix=prefix,
        boards=[Board(BOARD, ResetPeriod.MONTHLY, shards=shards)],
        retention=timedelta(days=1),
    )


async def outcomes_or_refusal(
    ranking: RedisRankingStore, requests: list[ScoreIncrement]
) -> list[IncrementOutcome] | str:
    """The batch's outcomes, or the name of the store's refusal."""
    try:
        return await ranking.increment(requests)
    except EventIdReused as refusal:
        return type(refusal).__name__


async def compare(
    data: dict[str, int],
    batch: list[tuple[str, int, bool]],
    shards: int,
    queries: list[tuple[int, int]],
) -> None:
    prefix = f"lbtest-eq-{secrets.token_hex(4)}"
    plain, sharded = store(prefix + "-1", 1), store(prefix + "-n", shards)
    try:
        for ranking in (plain, sharded):
            await ranking.load(BOARD, PERIOD, data.items(), [])
        names = sorted({*data, *(name for name, _, _ in batch), "nobody"})

        async def same(read: str, *arguments: object) -> None:
            expected = await getattr(plain, read)(BOARD, PERIOD, *arguments)
            actual = await getattr(sharded, read)(BOARD, PERIOD, *arguments)
            assert actual == expected, (read, arguments)

        async def all_reads() -> None:
            await same("player_count")
            for limit, offset in queries:
                await same("top", limit, offset)
            for name in names:
                await same("player", name)
                for radius in (0, 1, 3):
                    await same("neighborhood", name, radius)

        await all_reads()
        if batch:
            requests = []
            for name, delta, with_id in batch:
                event_id = f"e-{name}" if with_id else f"~{uuid.uuid4().hex}"
                requests.append(
                    ScoreIncrement(
                        board=BOARD,
                        period=PERIOD,
                        username=name,
                        delta=delta,
                        event_id=event_id,
                        client_event_id=with_id,
                    )
                )
            # Ids are per player with any delta: a reuse for another delta is refused,
            # by both boards alike, and changes nothing on either (the reads agree).
            expected = await outcomes_or_refusal(plain, requests)
            actual = await outcomes_or_refusal(sharded, requests)
            assert actual == expected
            await all_reads()
    finally:
        await plain.close()
        await sharded.close()
        await delete_prefix(prefix + "-1")
        await delete_prefix(prefix + "-n")


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
@given(
    data=totals,
    batch=increments,
    shards=st.sampled_from([2, 3, 7]),
    queries=st.lists(st.tuples(st.integers(0, 12), st.integers(0, 45)), min_size=1, max_size=4),
)
def test_a_sharded_board_answers_as_the_unsharded_one(
    data: dict[str, int],
    batch: list[tuple[str, int, bool]],
    shards: int,
    queries: list[tuple[int, int]],
) -> None:
    asyncio.run(compare(data, batch, shards, queries))
