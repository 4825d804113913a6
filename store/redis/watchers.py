"""Watcher markers: which boards some instance follows the changes of, kept honest by expiry.

A write publishes a board's changes (and computes the ranks they carry) only while the
board's marker (keys.py `watched`) is present: under batched ingest of a board
nobody watches, building and publishing a message per call was a third of the write
script's cost. An instance holds a board (`Watchers.watch`) for each live consumer of
its changes (a live subscription's feed with watchers, the top cache of the board, any
`changes()` iterator); while it holds any, it sets the board's marker (keys.py) with a
TTL of `WATCH_TTL`, again every `WATCH_REFRESH`. An instance that dies stops refreshing:
its markers expire, and writes stop publishing.

The ordering that keeps every change seen: `watch` returns only once the markers are set,
and a consumer reads its initial state after that. A write that ran before the marker was
set published nothing, but the read after it sees it; a write after it publishes (on the
spread path the caller reads the marker once the write ended: spread.py;
docs/architecture.md, "Changes nobody watches").
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta

from store.redis.connection import AnyPipeline, Connection
from store.redis.keys import KeyLayout

logger = logging.getLogger(__name__)

WATCH_TTL = timedelta(seconds=30)
"""How long a marker outlives its last refresh: how long a dead instance's boards keep
being published for nobody."""
WATCH_REFRESH = timedelta(seconds=10)
"""How often an instance that holds a board sets its markers again (well within the TTL:
two refreshes may fail or be late before a marker lapses)."""


class Watchers:
    """This instance's holds on boards, and the markers they keep in Redis."""

    def __init__(self, connection: Connection, layout: KeyLayout) -> None:
        self._connection = connection
        self._layout = layout
        self._holds: dict[str, int] = {}
        # The first marking of a board, shared by concurrent first holders.
        self._marking: dict[str, asyncio.Future[None]] = {}
        self._refresher: asyncio.Task[None] | None = None
        self._marked: set[str] = set()
        """Held boards whose markers were set (the refresher keeps them)."""

    def holds(self, board: str) -> int:
        """How many holds this instance has on `board`."""
        return self._holds.get(board, 0)

    async def watch(self, board: str) -> None:
        """Hold `board` until `unwatch`: returns once its markers are set, so every write
        from then on publishes the board's changes (raises `StoreUnavailable`, holding
        nothing, when they could not be set)."""
        self._holds[board] = self._holds.get(board, 0) + 1
        marking = self._marking.get(board)
        if board in self._marked and marking is None:
            return  # marked already, and kept so by the refresher
        try:
            if marking is None:
                marking = asyncio.ensure_future(self._first_mark(board))
                self._marking[board] = marking
                marking.add_done_callback(self._marked_or_not(board))
            # Shielded: one holder that gives up must not cancel the others' marking.
            await asyncio.shield(marking)
        except BaseException:
            self.unwatch(board)
            raise
        if self._refresher is None or self._refresher.done():
            self._refresher = asyncio.create_task(self._refresh(), name="watcher markers")

    def unwatch(self, board: str) -> None:
        """Release one hold on `board` (the markers lapse by themselves: another instance
        may hold the board too)."""
        left = self._holds.get(board, 0) - 1
        if left > 0:
            self._holds[board] = left
        else:
            self._holds.pop(board, None)
            self._marked.discard(board)

    def _marked_or_not(self, board: str) -> Callable[[asyncio.Future[None]], None]:
        def done(marking: asyncio.Future[None]) -> None:
            self._marking.pop(board, None)
            # Retrieved here: its holders may all have given up (been cancelled).
            if not marking.cancelled():
                marking.exception()

        return done

    async def close(self) -> None:
        """Stop refreshing and marking (the markers lapse within `WATCH_TTL`)."""
        tasks = list(self._marking.values())
        if self._refresher is not None:
            tasks.append(self._refresher)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _refresh(self) -> None:
        while self._holds:
            await asyncio.sleep(WATCH_REFRESH.total_seconds())
            try:
                await self._mark(list(self._holds))
            except Exception:
                # The next round tries again; the TTL leaves room for two misses.
                logger.warning("could not refresh the watcher markers", exc_info=True)

    async def _first_mark(self, board: str) -> None:
        await self._mark([board])
        if board in self._holds:
            self._marked.add(board)

    async def _mark(self, boards: list[str]) -> None:
        ttl_ms = int(WATCH_TTL.total_seconds() * 1000)
        keys = [self._layout.watched(board) for board in boards]

        def commands(pipe: AnyPipeline) -> None:
            for key in keys:
                pipe.set(key, "1", px=ttl_ms)

        await self._connection.pipelined(commands)
