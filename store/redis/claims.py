"""Event ids on sharded boards: one binding per board period, across every shard.

Each shard's script sees its own event-id hash only, so the same id sent for players of
two shards would be applied in both (and MySQL's unique key would keep one). Before the
shards are written, claims.lua binds each client event id of a sharded board to its
increment's fingerprint in the board period's record (`PeriodKeys.claims`), refusing an
id bound to another increment. The shards' own hashes still decide, atomically with
each write, whether an increment applies: so a crash between the two steps leaves ids
bound but not applied, and the client's retry (same ids, same increments) passes the
binding and applies them. docs/reliability.md argues it in full.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence

from store.models import ScoreIncrement
from store.redis.keys import KeyLayout
from store.redis.scripts import Scripts


def needing_binding(
    layout: KeyLayout, increments: Sequence[ScoreIncrement]
) -> dict[tuple[str, str], list[ScoreIncrement]]:
    """The client event ids of sharded boards, by board period (empty: nothing to bind)."""
    by_period: dict[tuple[str, str], list[ScoreIncrement]] = {}
    for increment in increments:
        if increment.client_event_id and layout.board(increment.board).shards > 1:
            by_period.setdefault((increment.board, increment.period), []).append(increment)
    return by_period


async def bind(scripts: Scripts, by_period: dict[tuple[str, str], list[ScoreIncrement]]) -> None:
    """Bind every id, or raise the first refusal: one atomic call for one board period;
    for several, all checked before any is written (see docs/reliability.md for the race
    that may still leave ids bound to what this batch sent)."""
    calls = list(by_period.items())
    if len(calls) > 1:
        await _first_refusal(
            [
                scripts.claims(board, period, increments, check_only=True)
                for (board, period), increments in calls
            ]
        )
    await _first_refusal(
        [
            scripts.claims(board, period, increments, check_only=False)
            for (board, period), increments in calls
        ]
    )


async def _first_refusal(calls: list[Awaitable[None]]) -> None:
    results = await asyncio.gather(*calls, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
