"""What the rest of the service may ask of the stores: narrow protocols, one per use.

Each consumer depends on the protocol it uses, not on a backend nor on everything a
backend can do: the service layer reads (`RankingReads`) and writes (`RankingWrites`),
recovery rebuilds (`RebuildTarget`), live updates and the top cache follow the changes
(`ChangeFeed`); the batcher appends to the history (`HistoryWrites`), recovery reads it
(`HistoryReads`), and the server opens and checks a whole `ScoreHistory`; moderation
takes players out and puts them back (`RankingModeration`). `RankingStore`
is all the ranking protocols plus the lifecycle: what a backend (Redis, embedded)
implements, and what the contract suite (tests/store/test_ranking_contract.py) checks on
every backend. `TopFront` is the top read and every call that can change a top: what the
per-instance top cache (store/cached_ranking.py) wraps, and the only calls the server
sends through it; every other call goes straight to the ranking store.

Protocols are structural: a backend implements them by having the methods, without
naming them.

Ranks are standard competition ranks: 1 + the number of players with a strictly better
score (higher; lower on ASC boards). Lists are ordered best first, then by username
ascending; on EARLIEST boards equal scores list who reached them first, and a rank is the
position (docs/boards.md). A write is an increment on INCREMENT boards and a submission on
BEST/LATEST boards (the same `ScoreIncrement`, its `delta` holding the value).

A board's period must be *loaded* (rebuilt from the history, or created empty) before it
is read or written: every ranking method that touches a period raises `RankingNotLoaded`
when it is not, so that a Redis that lost its data is noticed and rebuilt instead of
silently serving or counting from zero. Backend failures raise `StoreUnavailable`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Protocol

from store.models import (
    IncrementOutcome,
    PageKey,
    PlayerProfile,
    RankedPlayer,
    RankingPage,
    RemovedScore,
    ScoreChange,
    ScoreEvent,
    ScoreIncrement,
    StoredProfile,
)


class TopReads(Protocol):
    """The one read the per-instance top cache serves from snapshots."""

    async def top(self, board: str, period: str, limit: int, offset: int) -> list[RankedPlayer]:
        """Players ranked offset+1 .. offset+limit, best first."""
        ...


class RankingReads(TopReads, Protocol):
    """The reads of a loaded period's ranking."""

    async def player(self, board: str, period: str, username: str) -> RankedPlayer | None:
        """One player's standing, or None without a score in the period."""
        ...

    async def neighborhood(
        self, board: str, period: str, username: str, radius: int, *, fill: bool = False
    ) -> list[RankedPlayer]:
        """The player and up to `radius` players directly above and below, best first.

        With `fill`, 2 * radius + 1 players whenever the period has that many: the window
        shifts down at the top and up at the bottom.
        """
        ...

    async def player_count(self, board: str, period: str) -> int:
        """How many players have a score in the period."""
        ...

    async def players(
        self, board: str, period: str, usernames: Sequence[str]
    ) -> list[RankedPlayer]:
        """The named players (distinct) that have a score, with board-wide ranks, best first
        (rank, then username): one round trip per shard, whatever the number of names."""
        ...

    async def page(self, board: str, period: str, first: int, after: PageKey | None) -> RankingPage:
        """Up to `first` players following the place `after` in the ranking's order (from
        the top without one): O(log N + first), and a player whose score does not change
        is never skipped nor repeated by a reader following the keys."""
        ...


class RankingWrites(Protocol):
    """The one write: increments, applied atomically."""

    async def increment(
        self, increments: Sequence[ScoreIncrement], *, ranks: bool = True
    ) -> list[IncrementOutcome]:
        """Apply increments in order, all or none, in one round trip; publish each applied one
        (to every consumer of `ChangeFeed.changes`: a backend may skip boards nobody watches).

        Without `ranks` the caller does not read the outcomes' `rank` and `previous_rank`:
        a backend may leave them 0 (the ranks are what a write costs most in Redis).

        An increment whose client event id was already applied in its board's period
        is not applied again (its outcome says `applied=False` with current standing).
        Raises `ScoreOutOfRange` (nothing applied) when a total would pass 2^53 - 1, and
        `ScoreBeyondCap` when a kept score (a total) would leave the board's
        minScore..maxScore. Only writes that change a kept score are published.
        """
        ...


class ChangeFeed(Protocol):
    """Every applied increment of a board, for live updates and cache invalidation."""

    def changes(self, board: str, /, *, watch: bool = True) -> AsyncIterator[ScoreChange]:
        """Every applied increment of the board (all periods), from any instance, as it happens.

        Delivery is best effort (pub/sub may drop messages under pressure): consumers
        resynchronise from reads now and then. The iterator holds the board (`watch`)
        while it is open, unless `watch` is false: then the consumer holds the board
        itself while it needs the changes (a feed that stays subscribed for ever).
        """
        ...

    async def watch(self, board: str, /) -> None:
        """Hold the board until `unwatch`: returns once every write, from any instance,
        publishes the board's changes. A consumer reads its initial state after this
        returns, so that a write that published nothing before is in that read."""
        ...

    def unwatch(self, board: str, /) -> None:
        """Release one hold of `watch`."""
        ...


class RankingLoads(Protocol):
    """The rebuild's one write: a period's whole ranking replaced."""

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
        """Replace the period's ranking (each player's kept score) and seen client events
        (username, event id, delta: the id's binding to its write), then mark it loaded,
        atomically. On boards that keep instants (`Board.keeps_instants`), `instants` is
        when each player reached the kept score (EARLIEST ranks by it) and `clock` the
        last instant given out in the period (later writes get later ones). `writers`
        gives each writer's last applied sequence in the period (idempotency per writer:
        a call with that sequence or an older one is then a replay).

        Readers and writers see either the old state (not loaded) or the whole new one.
        """
        ...


class RebuildTarget(RankingLoads, Protocol):
    """What recovery needs: whether a period is loaded, a claim on its rebuild, the load."""

    async def is_loaded(self, board: str, period: str) -> bool:
        """Whether the period's ranking is present and may be served."""
        ...

    async def claim_rebuild(self, board: str, period: str, ttl_seconds: float) -> str | None:
        """Atomically claim the right to rebuild a period (SET NX with expiry).

        Returns a claim token, or None when another instance holds the claim.
        """
        ...

    async def release_rebuild(self, board: str, period: str, token: str) -> None:
        """Give up a claim, only when it is still ours."""
        ...

    async def totals(self, board: str, period: str) -> dict[str, int]:
        """Every player's total in the period (for reconciliation against the history)."""
        ...


class RankingModeration(Protocol):
    """Taking one player out of a period's live ranking, and giving a total back
    (removePlayer, banPlayer, unbanPlayer, erasePlayer: docs/moderation.md).

    Each publishes what it did on the board's change feed: a removal as a change with
    `removed` set (its score and rank the ones the player had), a restored total as an
    ordinary change.
    """

    async def remove(self, board: str, period: str, username: str) -> RemovedScore | None:
        """Take the player out of the period's ranking atomically (every board kind); the
        kept score removed (and the removal's instant), or None when the player had no
        score (nothing changed). `RankingNotLoaded` unless the period is loaded."""
        ...

    async def restore(
        self, board: str, period: str, username: str, total: int, instant: int = 0
    ) -> bool:
        """Set the player's kept score in the period, reached at `instant` (the rank among
        equal scores on EARLIEST boards); False (nothing changed) when the period is not
        loaded (its rebuild ranks the player from the history)."""
        ...

    async def erase(self, board: str, period: str, username: str, event_ids: Sequence[str]) -> int:
        """Take the player out whether or not the period is loaded, and forget those of
        `event_ids` bound to the player; how many rankings lost the player (0 or 1)."""
        ...


class TopFront(TopReads, RankingWrites, RankingLoads, RankingModeration, ChangeFeed, Protocol):
    """The top read and every call that can change a top (or tell that one changed): what
    the per-instance top cache wraps, so that this instance's own changes drop what they
    reach before they return, and the change feed it relays drops what a change reaches
    before a consumer sees it. The server sends these, and only these, through the cache
    (server/resources.py)."""


class RankingStore(
    RankingReads, RankingWrites, ChangeFeed, RebuildTarget, RankingModeration, Protocol
):
    """Live rankings of every board's periods: what a backend implements (all of the above)."""

    async def ping(self) -> None:
        """Raise `StoreUnavailable` unless the backend answers."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


class HistoryWrites(Protocol):
    """What the write batcher needs of the history: appending events."""

    async def append(self, events: Sequence[ScoreEvent]) -> None:
        """Store events with one multi-row INSERT (split only where the database forces it);
        an event already stored (same board, period and event id) is skipped, so a retried
        batch never double-counts."""
        ...


class HistoryReads(Protocol):
    """What a rebuild needs of the history: a period's totals and client event ids."""

    async def totals(self, board: str, period: str) -> list[tuple[str, int]]:
        """Every player's summed delta in the period."""
        ...

    async def client_events(
        self, board: str, period: str, *, since_life: int = 0
    ) -> list[tuple[str, str, int]]:
        """(username, event id, delta) of the client-supplied event ids stored for the
        period (to restore idempotency: the increment each id is bound to; the username
        also says which shard of a board holds it), of those recorded in idempotency-window
        bucket `since_life` or later only (`ScoreEvent.id_life`)."""
        ...

    async def writers(self, board: str, period: str) -> list[tuple[str, int]]:
        """(writer id, its highest sequence) of every writer that stored a row in the
        period (kept by `append`, not lowered by an erasure): what a rebuild restores of
        idempotency per writer (`ScoreEvent.writer_id`)."""
        ...

    async def writes(self, board: str, period: str) -> list[tuple[str, int, int | None]]:
        """(username, applied_at_us, value) of every write of the period, in the order
        they were applied (by applied_at_us), a removal's value None: what a board that
        keeps instants replays (`board_model.replay`)."""
        ...


class ScoreHistory(HistoryWrites, HistoryReads, Protocol):
    """Append-only history of applied score events (MySQL, or SQLite when embedded).

    The source of truth the live rankings are rebuilt from. Failures raise `StoreUnavailable`.
    """

    async def connect(self) -> None:
        """Open the connection pool."""
        ...

    async def close(self) -> None:
        """Close the connection pool."""
        ...

    async def migrate(self) -> None:
        """Create or upgrade the tables; safe to run any number of times, concurrently."""
        ...

    async def ping(self) -> None:
        """Raise `StoreUnavailable` unless the database answers."""
        ...

    async def replica_status(self) -> str | None:
        """The read replica's state for a readiness report; None when there is none."""
        ...


class ProfileCache(Protocol):
    """A cache of player profiles in front of their table (Redis, or in-process): rebuildable
    from the table at any time, so a lost entry only costs a read of the table."""

    async def get(self, usernames: Sequence[str]) -> dict[str, StoredProfile]:
        """The cached entries of those players the cache holds (a player without a profile
        is cached as version 0): one round trip per shard of the cache."""
        ...

    async def read(
        self, usernames: Sequence[str]
    ) -> tuple[dict[str, StoredProfile], dict[str, int]]:
        """`get`, and in the same round trip the stamp `fill` takes: the generation of
        each part of the cache the names live in (`forget` moves it on)."""
        ...

    async def put(self, entries: dict[str, StoredProfile]) -> None:
        """Cache entries, each only over an older version (racing writers converge on the
        newest)."""
        ...

    async def fill(self, entries: dict[str, StoredProfile], stamp: dict[str, int]) -> None:
        """`put` entries read from the table after `read` gave `stamp`, except in a part of
        the cache where something was forgotten since (atomically checked): a refill
        racing an erasure cannot bring the erased profile back."""
        ...

    async def forget(self, usernames: Sequence[str]) -> None:
        """Drop the players' entries and move their parts' generation on (erasure: no key
        keeps their names, and no refill read before it writes them back)."""
        ...


class ProfileReads(Protocol):
    """What reads need of the profiles: many at once."""

    async def profiles(self, usernames: Sequence[str]) -> dict[str, PlayerProfile]:
        """Every named player's profile (`NO_PROFILE` when never set), in one fetch."""
        ...
