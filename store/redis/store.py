"""`RedisRankingStore`: the `RankingStore` on Redis, assembled from the package's parts.

It routes each call: a board's reads to single.py or sharded.py (by `Board.shards`),
a batch of increments to the coalesced script call of single.py, or, when it touches
a sharded board or runs on a cluster, to the spread path of spread.py (apply, board-wide
ranks, publish).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from datetime import timedelta

from store.boards import Board
from store.errors import ScoreOutOfRange
from store.event_window import DEFAULT_EVENT_ID_WINDOW
from store.models import (
    MAX_EXACT_SCORE,
    IncrementOutcome,
    PageKey,
    RankedPlayer,
    RankingPage,
    RemovedScore,
    ScoreChange,
    ScoreIncrement,
)
from store.observer import StoreObserver
from store.redis import changes
from store.redis.connection import Connection
from store.redis.instances import RedisInstances
from store.redis.keys import KeyLayout
from store.redis.moderation import Moderation
from store.redis.profiles import RedisProfileCache
from store.redis.rebuild import Rebuilds
from store.redis.scripts import Scripts
from store.redis.sharded import ShardedBoards
from store.redis.single import SingleBoards
from store.redis.spread import SpreadWrites
from store.redis.watchers import Watchers


class RedisRankingStore:
    """`RankingStore` on Redis (7.0 or later): shared by every instance of the service."""

    def __init__(
        self,
        connection: Connection,
        *,
        key_prefix: str,
        boards: Sequence[Board],
        retention: timedelta,
        event_id_window: timedelta = DEFAULT_EVENT_ID_WINDOW,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._connection = connection
        # `clock` (Unix seconds) decides the event-id window's buckets and the expiries.
        self._layout = KeyLayout(
            key_prefix, boards, retention, clock=clock, event_id_window=event_id_window
        )
        scripts = Scripts(connection, self._layout)
        self._scripts = scripts
        self._single = SingleBoards(scripts)
        self._sharded = ShardedBoards(connection, self._layout, scripts)
        self._rebuilds = Rebuilds(connection, self._layout, scripts)
        self._moderation = Moderation(connection, self._layout, self._sharded)
        self._watchers = Watchers(connection, self._layout)
        self._spread = SpreadWrites(
            connection, self._layout, scripts, self._sharded, self._watchers
        )
        self._closed = False
        # The one place the store asks which kind of Redis it has: a cluster call must
        # stay within one slot, one Redis takes any batch in one call.
        self._spread_always = connection.cluster

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        key_prefix: str,
        boards: Sequence[Board],
        retention: timedelta,
        cluster: bool = False,
        observer: StoreObserver | None = None,
        event_id_window: timedelta = DEFAULT_EVENT_ID_WINDOW,
        clock: Callable[[], float] = time.time,
    ) -> RedisRankingStore:
        """A store on a new client for a `redis://` or `rediss://` URL (nothing connects yet).

        With `cluster`, the URL names any one node of a Redis Cluster (the seed); the
        client discovers the others and follows slot moves and failovers.
        """
        return cls(
            Connection.from_url(url, cluster=cluster, observer=observer),
            key_prefix=key_prefix,
            boards=boards,
            retention=retention,
            event_id_window=event_id_window,
            clock=clock,
        )

    # Writes

    async def increment(
        self, increments: Sequence[ScoreIncrement], *, ranks: bool = True
    ) -> list[IncrementOutcome]:
        """Apply increments in order, all or none, in one script call; publish each applied.

        Calls made at the same moment share a script call (coalescing.py); each gets
        exactly what its own call would have. Sharded boards and Redis Cluster take the
        spread path (spread.py): on one Redis every shard's keys fit one script call, as
        all or none as ever; on a cluster each slot is its own call (cluster.py). Sharded
        ranks are then summed over the shards (sharded.py), and the changes published
        from there. On either path a board nobody watches (watchers.py) publishes
        nothing, and without `ranks` its outcomes' ranks are 0.
        """
        if not increments:
            return []
        for increment in increments:
            if abs(increment.delta) > MAX_EXACT_SCORE:
                raise ScoreOutOfRange(increment.username, increment.board)
        if self._spread_always or any(self._layout.board(i.board).shards > 1 for i in increments):
            return await self._spread.increment(increments, ranks=ranks)
        return await self._single.increment(increments, ranks=ranks)

    # Reads

    def _boards(self, board: str) -> SingleBoards | ShardedBoards:
        return self._sharded if self._layout.board(board).shards > 1 else self._single

    async def top(self, board: str, period: str, limit: int, offset: int) -> list[RankedPlayer]:
        """Players ranked offset+1 .. offset+limit, best first."""
        if limit < 0 or offset < 0:
            raise ValueError("limit and offset must not be negative")
        return await self._boards(board).top(board, period, limit, offset)

    async def player(self, board: str, period: str, username: str) -> RankedPlayer | None:
        """One player's standing, or None without a score in the period."""
        return await self._boards(board).player(board, period, username)

    async def neighborhood(
        self, board: str, period: str, username: str, radius: int, *, fill: bool = False
    ) -> list[RankedPlayer]:
        """The player and up to `radius` players directly above and below, best first
        (with `fill`, 2 * radius + 1 whenever the period has that many)."""
        if radius < 0:
            raise ValueError("radius must not be negative")
        return await self._boards(board).neighborhood(board, period, username, radius, fill=fill)

    async def player_count(self, board: str, period: str) -> int:
        """How many players have a score in the period."""
        return await self._boards(board).player_count(board, period)

    async def players(
        self, board: str, period: str, usernames: Sequence[str]
    ) -> list[RankedPlayer]:
        """The named players that have a score, best first: one round trip per shard."""
        return await self._boards(board).players(board, period, usernames)

    async def page(self, board: str, period: str, first: int, after: PageKey | None) -> RankingPage:
        """Up to `first` players after the place `after` (from the top without one)."""
        if first < 0:
            raise ValueError("first must not be negative")
        return await self._boards(board).page(board, period, first, after)

    def instances(self) -> RedisInstances:
        """The instance registry on this store's Redis (store/instances.py)."""
        return RedisInstances(self._connection, self._layout)

    async def unload(self, board: str, period: str) -> None:
        """Mark a period not loaded: its next use rebuilds it (behind the fence)."""
        await self._rebuilds.unload(board, period)

    def profile_cache(self) -> RedisProfileCache:
        """The player profile cache on this store's Redis (profiles.py)."""
        return RedisProfileCache(self._connection, self._layout)

    # Rebuilds (rebuild.py)

    async def totals(self, board: str, period: str) -> dict[str, int]:
        """Every player's total in the period (ZSCAN: see `Rebuilds.totals`)."""
        return await self._rebuilds.totals(board, period)

    async def is_loaded(self, board: str, period: str) -> bool:
        """Whether the period's loaded marker is present (every shard's, when sharded)."""
        return await self._rebuilds.is_loaded(board, period)

    async def claim_rebuild(self, board: str, period: str, ttl_seconds: float) -> str | None:
        """SET NX PX a random token; the token, or None when another claim holds."""
        return await self._rebuilds.claim(board, period, ttl_seconds)

    async def release_rebuild(self, board: str, period: str, token: str) -> None:
        """Delete the claim only while it still holds `token`."""
        await self._rebuilds.release(board, period, token)

    async def load(
        self,
        board: str,
        period: str,
        totals: Iterable[tuple[str, int]],
        client_events: Iterable[tuple[str, str, int]],
        *,
        instants: Mapping[str, int] | None = None,
        clock: int | None = None,
        writers: Iterable[tuple[str, int]] = (),
    ) -> None:
        """Replace the period's ranking and event ids, then mark it loaded, atomically."""
        await self._rebuilds.load(
            board, period, totals, client_events, instants=instants, clock=clock, writers=writers
        )

    # Moderation (moderation.py)

    async def remove(self, board: str, period: str, username: str) -> RemovedScore | None:
        """Take the player out of the period's ranking; what it removed, or None."""
        return await self._moderation.remove(board, period, username)

    async def restore(
        self, board: str, period: str, username: str, total: int, instant: int = 0
    ) -> bool:
        """Set the player's total; False when the period is not loaded."""
        return await self._moderation.restore(board, period, username, total, instant)

    async def erase(self, board: str, period: str, username: str, event_ids: Sequence[str]) -> int:
        """Take the player out (loaded or not) and forget their `event_ids`."""
        return await self._moderation.erase(board, period, username, event_ids)

    # Live changes (changes.py)

    def changes(self, board: str, *, watch: bool = True) -> AsyncIterator[ScoreChange]:
        """Applied increments of the board from every instance, via pub/sub.

        Subscribes on the first `__anext__`, holding the board (`watch`) first unless told
        not to; survives Redis restarts by resubscribing (changes published meanwhile are
        lost). Closing the iterator unsubscribes.
        """
        return changes.subscribe(
            self._connection,
            self._layout.channel(board),
            lambda: self._closed,
            watchers=self._watchers if watch else None,
            board=board,
        )

    async def watch(self, board: str) -> None:
        """Hold the board: returns once every write publishes its changes (watchers.py)."""
        await self._watchers.watch(board)

    def unwatch(self, board: str) -> None:
        """Release one hold of `watch`."""
        self._watchers.unwatch(board)

    # Connection

    async def ping(self) -> None:
        """Raise `StoreUnavailable` unless Redis answers PING."""
        await self._connection.ping()

    async def close(self) -> None:
        """Close the client's connections; open change iterators end at their next error.

        Increments already submitted are answered first.
        """
        self._closed = True
        await self._watchers.close()
        await self._single.drain()
        await self._connection.close()
