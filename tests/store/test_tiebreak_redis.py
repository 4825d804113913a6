"""The EARLIEST design on the real Redis: its order, and a prototype of the write step.

`PROTOTYPE` is the write step docs/boards.md proposes for BEST, LATEST and EARLIEST boards,
reduced to one submission (no batch, idempotency, caps, publish or expiry): it checks that
Lua's formatting, Redis' `TIME` and the member order behave as store/tiebreak.py assumes.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import cast

import pytest
import redis.asyncio as redis_asyncio

from store.board_model import SortOrder, TieBreak, UpdateRule, kept_score, replay
from store.boards import Board, ResetPeriod
from store.models import MAX_EXACT_SCORE, ScoreIncrement
from store.redis import RedisRankingStore
from store.tiebreak import (
    decode_member,
    encode_member,
    next_instant,
    ranks_ahead,
    score_from_stored,
    stored_score,
)
from tests.support.shared_services import REDIS_URL

pytestmark = pytest.mark.integration

EARLIEST = TieBreak.EARLIEST

PROTOTYPE = """
-- KEYS[1] ranking, KEYS[2] instants (hash username -> 16 hex; field '' = the key's clock)
-- ARGV[1] 'desc' | 'asc', ARGV[2] 'increment' | 'best' | 'latest', ARGV[3] username,
-- ARGV[4] the submitted score (a delta on INCREMENT boards).
-- Returns {changed (1/0), the kept score, the instant (16 hex), the unique rank}.
local sign = ARGV[1] == 'desc' and -1 or 1
local rule, username, value = ARGV[2], ARGV[3], tonumber(ARGV[4])
local function fmt(number) return string.format('%.17g', number) end
local old = redis.call('HGET', KEYS[2], username)
local kept = nil
if old then
  kept = sign * tonumber(redis.call('ZSCORE', KEYS[1], old .. username))
end
local new = value
if kept ~= nil then
  if rule == 'increment' then new = kept + value
  elseif rule == 'best' and sign * value >= sign * kept then new = kept end
end
if kept ~= nil and new == kept then
  -- Unchanged: the player keeps the instant they first reached this score.
  return {0, fmt(kept), old, redis.call('ZRANK', KEYS[1], old .. username) + 1}
end
local now = redis.call('TIME')
local instant = tonumber(now[1]) * 1000000 + tonumber(now[2])
local last = redis.call('HGET', KEYS[2], '')
if last then instant = math.max(instant, tonumber(last, 16) + 1) end
local at = string.format('%016x', instant)
if old then redis.call('ZREM', KEYS[1], old .. username) end
local stored = sign * new
if stored == 0 then stored = 0 end
redis.call('ZADD', KEYS[1], fmt(stored), at .. username)
redis.call('HSET', KEYS[2], username, at, '', at)
return {1, fmt(new), at, redis.call('ZRANK', KEYS[1], at .. username) + 1}
"""


@pytest.fixture
async def client() -> AsyncIterator[redis_asyncio.Redis]:
    """A client of the shared Redis that returns str."""
    connection = redis_asyncio.Redis.from_url(REDIS_URL, decode_responses=True)
    yield connection
    await connection.aclose()


async def submit(
    client: redis_asyncio.Redis,
    prefix: str,
    order: SortOrder,
    rule: UpdateRule,
    username: str,
    value: int,
) -> tuple[bool, int, int, int]:
    """One submission through the prototype: changed, kept score, instant (µs), rank."""
    keys = [f"{prefix}:{{b|p}}:ranking", f"{prefix}:{{b|p}}:instants"]
    reply = await client.eval(PROTOTYPE, 2, *keys, order.value, rule.value, username, str(value))
    changed, kept, at, rank = reply
    return changed == 1, int(kept), int(at, 16), int(rank)


async def members(client: redis_asyncio.Redis, key: str) -> list[tuple[str, float]]:
    """The whole sorted set in Redis' order, with the stored scores."""
    return cast(list[tuple[str, float]], await client.zrange(key, 0, -1, withscores=True))


@pytest.mark.parametrize("order", list(SortOrder))
async def test_redis_orders_members_as_the_model(
    client: redis_asyncio.Redis, redis_prefix: str, order: SortOrder
) -> None:
    generator = random.Random(53)
    key = f"{redis_prefix}:order"
    edges = [MAX_EXACT_SCORE, MAX_EXACT_SCORE - 1, -MAX_EXACT_SCORE, -MAX_EXACT_SCORE + 1, 0]
    players = [
        (generator.choice(edges), 1_796_500_000_000_000 + generator.randrange(3), f"p{index}")
        for index in range(300)
    ]
    players += [(MAX_EXACT_SCORE, 5, "\u00e5"), (MAX_EXACT_SCORE, 5, "z"), (0, 0, "\U0001d49c")]
    await client.zadd(
        key,
        {
            encode_member(EARLIEST, instant, name): stored_score(order, score)
            for score, instant, name in players
        },
    )
    listed = await members(client, key)
    decoded = [
        (score_from_stored(order, stored), *decode_member(EARLIEST, member))
        for member, stored in listed
    ]
    assert sorted(decoded) == sorted(players)  # exact scores and names back
    for first, second in itertools.pairwise(decoded):
        assert ranks_ahead(order, EARLIEST, first, second)


async def test_equal_scores_in_the_same_microsecond_get_unique_ranks(
    client: redis_asyncio.Redis, redis_prefix: str
) -> None:
    # Two instances writing at once: the script calls are serialized, each gets its own
    # instant even within one microsecond of Redis' clock, and the first applied ranks first.
    top = MAX_EXACT_SCORE
    results = await asyncio.gather(
        *(
            submit(client, redis_prefix, SortOrder.DESC, UpdateRule.BEST, f"player{index}", top)
            for index in range(50)
        )
    )
    instants = [instant for _, _, instant, _ in results]
    assert len(set(instants)) == 50
    by_instant = sorted(results, key=lambda result: result[2])
    assert [rank for _, _, _, rank in by_instant] == list(range(1, 51))
    assert all(kept == top for _, kept, _, _ in results)


@pytest.mark.parametrize("order", list(SortOrder))
@pytest.mark.parametrize("rule", list(UpdateRule))
async def test_prototype_follows_the_rules_and_a_rebuild_from_history_reproduces_it(
    client: redis_asyncio.Redis, redis_prefix: str, order: SortOrder, rule: UpdateRule
) -> None:
    generator = random.Random(f"{order}{rule}")
    values = [-MAX_EXACT_SCORE + 2, -1, 0, 1, 2, MAX_EXACT_SCORE - 2]
    if rule is UpdateRule.INCREMENT:
        values = [-2, -1, 1, 2]
    history: dict[str, list[tuple[int, int]]] = {}
    kept: dict[str, int] = {}
    last_instant: int | None = None
    for _ in range(150):
        name = generator.choice(["amy", "bob", "cid", "dan", "\u00e9va"])
        value = generator.choice(values)
        changed, score, instant, _ = await submit(client, redis_prefix, order, rule, name, value)
        expected = kept_score(rule, order, kept.get(name), value)
        assert score == expected
        assert changed == (kept.get(name) != expected)
        kept[name] = expected
        if changed:
            assert instant == next_instant(instant, last_instant)  # strictly increasing
            last_instant = instant
        # The history keeps every applied write with the instant the script gave it.
        history.setdefault(name, []).append((instant, value))

    live = await members(client, f"{redis_prefix}:{{b|p}}:ranking")
    # A rebuild: replay each player's history in instant order, then list by the model.
    rebuilt = []
    for name, writes in history.items():
        outcome = replay(rule, order, sorted(writes))
        assert outcome is not None
        rebuilt.append((outcome[0], outcome[1], name))
    rebuilt.sort(key=lambda p: (stored_score(order, p[0]), encode_member(EARLIEST, p[1], p[2])))
    assert [
        (score_from_stored(order, stored), *decode_member(EARLIEST, member))
        for member, stored in live
    ] == rebuilt


async def test_instants_stay_increasing_when_the_clock_is_behind(
    client: redis_asyncio.Redis, redis_prefix: str
) -> None:
    # As after a failover to a replica whose clock is late: the key's clock is ahead of TIME.
    ahead = 4_000_000_000_000_000  # year 2096
    await client.hset(f"{redis_prefix}:{{b|p}}:instants", "", f"{ahead:016x}")
    first = await submit(client, redis_prefix, SortOrder.ASC, UpdateRule.LATEST, "amy", 7)
    second = await submit(client, redis_prefix, SortOrder.ASC, UpdateRule.LATEST, "bob", 7)
    assert (first[2], second[2]) == (ahead + 1, ahead + 2)
    assert (first[3], second[3]) == (1, 2)


async def test_two_instances_submitting_equal_scores_at_once_get_unique_ordered_ranks(
    redis_prefix: str,
) -> None:
    """Two service instances (two stores on one Redis) writing the same score at the same
    moment, many times: every write gets its own instant (the key's clock), and the ranks
    are 1..n in the order the instants say, however the calls interleaved."""
    board = Board("race", ResetPeriod.NEVER, update_rule=UpdateRule.BEST, tie_break=EARLIEST)
    instances = [
        RedisRankingStore.from_url(
            REDIS_URL, key_prefix=redis_prefix, boards=[board], retention=timedelta(days=1)
        )
        for _ in range(2)
    ]
    try:
        await instances[0].load("race", "all", [], [])

        async def submit(instance: RedisRankingStore, username: str) -> int:
            [outcome] = await instance.increment(
                [
                    ScoreIncrement(
                        board="race",
                        period="all",
                        username=username,
                        delta=42,
                        event_id=f"~{username}",
                        client_event_id=False,
                    )
                ]
            )
            assert outcome.instant is not None
            return outcome.instant

        names = [f"p{number:02d}" for number in range(40)]
        instants = await asyncio.gather(
            *(submit(instances[number % 2], name) for number, name in enumerate(names))
        )
        assert len(set(instants)) == len(names)
        by_instant = [name for _, name in sorted(zip(instants, names, strict=True))]
        top = await instances[1].top("race", "all", 100, 0)
        assert [(p.username, p.score, p.rank) for p in top] == [
            (name, 42, rank) for rank, name in enumerate(by_instant, 1)
        ]
    finally:
        for instance in instances:
            await instance.close()
