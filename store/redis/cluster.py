"""How a batch of increments runs on a Redis Cluster: one script call per slot.

A script may only touch keys of one slot, and each (board, period, shard) has its own
hash tag (keys.py), so a batch is split by slot, keeping each slot's increments in
batch order. With several slots, a dry run of every call comes first (increment.lua
checks loaded markers and ranges without writing), so a batch that would be refused
(not loaded, out of range) changes nothing. A node failing between the dry run and the
writes raises `PartiallyApplied` with what was applied. Client event ids of sharded
boards are bound (claims.py) between the dry run and the writes. A slot's script ranks only
an unsharded board the caller names (a shard's ranks are one shard's); the caller then
derives board-wide ranks (sharded.py) and publishes (spread.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Sequence

from store.errors import PartiallyApplied, StoreError
from store.models import IncrementOutcome, ScoreIncrement
from store.redis.keys import KeyLayout
from store.redis.scripts import Scripts


async def apply_per_slot(
    scripts: Scripts,
    layout: KeyLayout,
    increments: Sequence[ScoreIncrement],
    before_writes: Callable[[], Awaitable[None]] | None = None,
    *,
    ranked: Collection[str] = (),
) -> list[IncrementOutcome]:
    """The increments' outcomes in batch order, publishing nothing (see module doc);
    `before_writes` runs after the checks, before anything is written; the scripts rank
    the boards of `ranked` (ranks 0 elsewhere, but write.lua always ranks)."""
    by_slot: dict[tuple[str, str, int], list[int]] = {}
    for index, increment in enumerate(increments):
        shard = layout.board(increment.board).shard_of(increment.username)
        by_slot.setdefault((increment.board, increment.period, shard), []).append(index)
    slots = [[increments[index] for index in indexes] for indexes in by_slot.values()]
    ranks = [board in ranked for board, _, _ in by_slot]

    if len(slots) > 1 or before_writes is not None:
        checks = await asyncio.gather(
            *(scripts.increment(batch, publish=False, dry_run=True) for batch in slots),
            return_exceptions=True,
        )
        # The first refusal in batch order, as one script call would name it.
        for check in checks:
            if isinstance(check, BaseException):
                raise check
    if before_writes is not None:
        await before_writes()
    results = await asyncio.gather(
        *(
            scripts.increment(batch, publish=False, ranks=rank)
            for batch, rank in zip(slots, ranks, strict=True)
        ),
        return_exceptions=True,
    )
    applied: dict[int, IncrementOutcome] = {}
    failure: BaseException | None = None
    for indexes, result in zip(by_slot.values(), results, strict=True):
        if isinstance(result, BaseException):
            failure = failure or result
        else:
            applied.update(zip(indexes, result, strict=True))
    if failure is not None:
        if not applied or not isinstance(failure, StoreError):
            raise failure
        raise PartiallyApplied([applied[index] for index in sorted(applied)], failure)
    return [applied[index] for index in range(len(increments))]
