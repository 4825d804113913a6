"""The spread write path: batches that touch a sharded board, or any batch on a Cluster.

A script there sees one slot (a cluster) or writes without publishing (sharded ranks are
only known after the call), so the watcher marker of a board (watchers.py), which lives in
no period's slot, is read by the caller instead: once every script call of the batch has
returned, one EXISTS per board touched (one pipelined round). The guarantee of
watchers.py holds as in the scripts: a watcher sets the marker before its first read; a
write that ended before that read is seen by the read, and a write that ended after it
finds the marker when it is read after the write. Only then are the ranks a message carries
derived (sharded.py) and the changes published (changes.py).

Ranks are computed for a board when the caller asked or the board is watched. A shard's
script never ranks (its ranks are one shard's, replaced by the board-wide ones); an
unsharded board's script ranks when asked, or when the board was found watched by this
instance's last check or is held here (a hint only: a board found watched that its
script did not rank gets the ranks derived after the call, as a sharded board's are).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Sequence

from store.errors import StoreUnavailable
from store.models import IncrementOutcome, ScoreIncrement
from store.redis import changes, claims
from store.redis.cluster import apply_per_slot
from store.redis.connection import AnyPipeline, Connection
from store.redis.keys import KeyLayout
from store.redis.scripts import Scripts
from store.redis.sharded import ShardedBoards
from store.redis.watchers import Watchers


class SpreadWrites:
    """Writes of the spread path: apply, check the markers, rank, publish (module doc)."""

    def __init__(
        self,
        connection: Connection,
        layout: KeyLayout,
        scripts: Scripts,
        sharded: ShardedBoards,
        watchers: Watchers,
    ) -> None:
        self._connection = connection
        self._layout = layout
        self._scripts = scripts
        self._sharded = sharded
        self._watchers = watchers
        self._seen_watched: set[str] = set()
        """Boards the last marker check found watched (the scripts' ranks hint)."""

    async def increment(
        self, increments: Sequence[ScoreIncrement], *, ranks: bool
    ) -> list[IncrementOutcome]:
        """Apply (binding client event ids of sharded boards first, claims.py), then rank
        and publish what the markers and `ranks` ask for; without `ranks` an unwatched
        board's outcomes have ranks 0."""
        boards = sorted({increment.board for increment in increments})
        in_script = {
            board
            for board in boards
            if self._layout.board(board).shards == 1
            and (ranks or board in self._seen_watched or self._watchers.holds(board) > 0)
        }
        to_bind = claims.needing_binding(self._layout, increments)
        outcomes = await self._apply(
            increments,
            in_script,
            (lambda: claims.bind(self._scripts, to_bind)) if to_bind else None,
        )
        # After the writes, never before (module doc).
        if ranks:
            watched, outcomes = await asyncio.gather(
                self._watched(boards), self._sharded.with_board_ranks(outcomes)
            )
        else:
            watched = await self._watched(boards)
            outcomes = await self._sharded.with_board_ranks(outcomes, boards=watched)
            outcomes = self._without_shard_ranks(outcomes, watched)
        self._seen_watched.difference_update(boards)
        self._seen_watched.update(watched)
        await changes.publish(
            self._connection,
            self._layout,
            (outcome for outcome in outcomes if outcome.increment.board in watched),
        )
        return outcomes

    def _without_shard_ranks(
        self, outcomes: list[IncrementOutcome], ranked: set[str]
    ) -> list[IncrementOutcome]:
        """The outcomes of sharded boards outside `ranked` with ranks 0: a shard's
        write.lua ranks within its shard (increment.lua is asked for none), and a rank is
        the true one or 0, never a shard's."""
        return [
            dataclasses.replace(
                outcome,
                rank=0,
                previous_rank=None if outcome.previous_rank is None else 0,
            )
            if outcome.rank
            and outcome.increment.board not in ranked
            and self._layout.board(outcome.increment.board).shards > 1
            else outcome
            for outcome in outcomes
        ]

    async def _apply(
        self,
        increments: Sequence[ScoreIncrement],
        in_script: set[str],
        before_writes: Callable[[], Awaitable[None]] | None,
    ) -> list[IncrementOutcome]:
        """Apply without publishing: per slot on a cluster, else one script call (after a
        dry run when `before_writes` must run between the checks and the writes); the
        scripts rank the boards of `in_script` (one call: all of its boards, if any)."""
        if self._connection.cluster:
            return await apply_per_slot(
                self._scripts, self._layout, increments, before_writes, ranked=in_script
            )
        ranks = bool(in_script)
        if before_writes is not None:
            await self._scripts.increment(increments, publish=False, dry_run=True)
            await before_writes()
        return await self._scripts.increment(increments, publish=False, ranks=ranks)

    async def _watched(self, boards: list[str]) -> set[str]:
        """The boards whose marker is present: one EXISTS each, one pipelined round. When
        the markers cannot be read, every board (publishing to nobody is harmless)."""
        keys = [self._layout.watched(board) for board in boards]

        def commands(pipe: AnyPipeline) -> None:
            for key in keys:
                pipe.exists(key)

        try:
            present = await self._connection.pipelined(commands)
        except StoreUnavailable:
            return set(boards)
        return {board for board, found in zip(boards, present, strict=True) if int(found)}
