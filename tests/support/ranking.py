"""What the ranking store tests share: boards, periods, increments, a change feed, and a
store with the top cache in front as the server wires it."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import suppress
from typing import Any, Protocol, cast

from store.boards import Board, ResetPeriod
from store.cached_ranking import TopCache
from store.models import ScoreChange, ScoreIncrement
from store.ports import RankingStore, TopFront

BOARDS = (
    Board("global", ResetPeriod.MONTHLY),
    Board("daily", ResetPeriod.DAILY),
    Board("alltime", ResetPeriod.NEVER),
)


GLOBAL = "global"


PERIOD = "2026-05"


PROBE_PERIOD = "2026-04"
"""A period of its own for the increments that check a change feed is live."""


SHARDED_BOARDS = tuple(Board(board.id, board.reset, shards=4) for board in BOARDS)
"""The same boards, each spread over four sorted sets: the results must not change."""


def inc(
    username: str,
    delta: int,
    event_id: str | None = None,
    *,
    board: str = GLOBAL,
    period: str = PERIOD,
) -> ScoreIncrement:
    """An increment; without `event_id` it carries a generated one, as the service makes."""
    return ScoreIncrement(
        board=board,
        period=period,
        username=username,
        delta=delta,
        event_id=event_id or f"~{uuid.uuid4().hex}",
        client_event_id=event_id is not None,
    )


def of_writer(
    writer: str, sequence: int, *increments: ScoreIncrement, call: int = 0
) -> list[ScoreIncrement]:
    """One writer's call: the increments with its writer id, sequence and call number (as
    the service marks them; merged calls differ by call number)."""
    return [
        dataclasses.replace(increment, writer_id=writer, sequence=sequence, call=call)
        for increment in increments
    ]


class ChangeFeed:
    """Collects a store's change feed of a board on a background task."""

    def __init__(self, store: RankingStore, board: str = GLOBAL, *, watch: bool = True) -> None:
        self._store = store
        self._board = board
        # Without `watch` the feed holds nothing: the test holds the board (`store.watch`).
        self._iterator = store.changes(board, watch=watch)
        self._received: asyncio.Queue[ScoreChange] = asyncio.Queue()
        self._task = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        async for change in self._iterator:
            self._received.put_nowait(change)

    async def ready(self, timeout: float = 10.0) -> None:
        """Return once the feed delivers: the subscription starts asynchronously."""
        await self._store.load(self._board, PROBE_PERIOD, [], [])
        deadline = asyncio.get_running_loop().time() + timeout
        probes = 0
        while True:
            # A new player each time: a first score is news on a board of any rule (a BEST
            # board publishes nothing for an equal submission).
            probes += 1
            probe = inc(f"probe{probes}", 1, board=self._board, period=PROBE_PERIOD)
            await self._store.increment([probe])
            try:
                await asyncio.wait_for(self._received.get(), 0.1)
                return
            except TimeoutError:
                if asyncio.get_running_loop().time() > deadline:
                    raise

    async def next(self, timeout: float = 5.0) -> ScoreChange:
        """The next change outside the probe period."""
        async with asyncio.timeout(timeout):
            while True:
                change = await self._received.get()
                if change.period != PROBE_PERIOD:
                    return change

    async def close(self) -> None:
        """Stop collecting and close the iterator (which unsubscribes)."""
        self._task.cancel()
        with suppress(asyncio.CancelledError):
            await self._task
        await cast(AsyncGenerator[ScoreChange, None], self._iterator).aclose()


NOT_LOADED_OPERATIONS: dict[str, Callable[[RankingStore], Awaitable[object]]] = {
    "increment": lambda store: store.increment([inc("alice", 1)]),
    "top": lambda store: store.top(GLOBAL, PERIOD, 10, 0),
    "player": lambda store: store.player(GLOBAL, PERIOD, "alice"),
    "neighborhood": lambda store: store.neighborhood(GLOBAL, PERIOD, "alice", 2),
    "player_count": lambda store: store.player_count(GLOBAL, PERIOD),
    "totals": lambda store: store.totals(GLOBAL, PERIOD),
    "remove": lambda store: store.remove(GLOBAL, PERIOD, "alice"),
    "players": lambda store: store.players(GLOBAL, PERIOD, ["alice", "bob"]),
    "page": lambda store: store.page(GLOBAL, PERIOD, 10, None),
}


_FRONT = frozenset(
    name
    for base in TopFront.__mro__
    if getattr(base, "_is_protocol", False) and base is not Protocol
    for name, member in vars(base).items()
    if callable(member) and not name.startswith("_")
)
"""The calls of `TopFront`: what the server sends through the top cache."""


class TopCached:
    """A ranking store whose `TopFront` calls go through a top cache and the rest straight to
    the store, as the server wires them (server/resources.py): what the contract suite checks
    the cache against (reads after writes included)."""

    def __init__(self, store: RankingStore, max_staleness: float) -> None:
        self._store = store
        self._cache = TopCache(store, max_staleness)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cache if name in _FRONT else self._store, name)

    async def close(self) -> None:
        """Stop the cache, then close the store."""
        await self._cache.close()
        await self._store.close()


def top_cached(store: RankingStore, max_staleness: float) -> RankingStore:
    """`store` with a top cache in front of its `TopFront` calls, as a `RankingStore`."""
    return cast(RankingStore, TopCached(store, max_staleness))
