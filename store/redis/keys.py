"""The key layout, documented once: every Redis key and channel name is built here.

Per board and period, one hash tag, so that a period's keys share a Cluster slot:

    {prefix}:{board|period}:ranking   sorted set, member = username, score = -total
    {prefix}:{board|period}:eventids:<bucket>
                                      hash: client event id -> fingerprint of the
                                      increment it named (`fingerprint`), one per
                                      window-long time bucket (`EventWindow`)
    {prefix}:{board|period}:writers   hash: writer id -> the last sequence of its calls
                                      applied here (idempotency per writer, common.lua
                                      `check_writers`); expires with the period
    {prefix}:{board|period}:loaded    marker: present = the ranking may be served
    {prefix}:{board|period}:rebuild   rebuild claim, value = the claimer's token
    {prefix}:{board|period}:instants  hash, on BEST, LATEST and EARLIEST boards only:
                                      username -> 16 hex digits of the instant the
                                      player reached the kept score; field "" = the
                                      key's clock (write.lua, docs/boards.md)

A board spread over N shards has N of each of the first four, tagged
`{board|period|shard}` (different Cluster slots, so the shards spread over the nodes);
the rebuild claim stays one per board period, and so does the board period's own
`{board|period}:eventids:<bucket>` hashes (`PeriodKeys.claims`): the one place that binds
an event id to one increment across every shard (claims.lua; docs/reliability.md argues
the two steps). The record `{board|period}:eventids` itself holds only the field `""`
from its load on, so that its absence (lost data) reads as "not loaded". A load writes
temporary keys `<ranking>:load:<token>` and `<events>:<bucket>:load:<token>` next to
the live ones, then swaps them in (load.lua).

Client event ids are remembered for the idempotency window W
(`LEADERBOARD_EVENT_ID_WINDOW_SECONDS`), not for the period: bucket b = floor(now / W)
(the writing instance's clock) holds the ids first seen in [bW, (b+1)W) and expires at
(b+2)W; a write checks buckets b and b-1. So an id is remembered at least W and at most
2W, and memory is rate x 1..2 W, whatever the period's length (docs/scaling.md has the
measured bytes per id).

Scores are stored negated so that ascending member order is the leaderboard order
(score descending, ties by username ascending, as Redis orders equal scores by member
bytes); on ASC boards as they are (`Board.sign`); on EARLIEST boards the member is the
instant's 16 hex digits, then the username (store/tiebreak.py). Applied increments are
published on `{prefix}:changes:{board}` (changes.py) while the board's marker

    {prefix}:watched:{board}          present while some instance has a live consumer of
                                      the board's changes (watchers.py; a TTL keeps it
                                      honest)

is present: increment.lua publishes, and computes the ranks a message carries, only then.
The marker is per board, not per period (a watcher follows every period), so it is
outside the periods' hash tags: increment.lua reads it only on a single Redis; on a
Cluster and for sharded boards the scripts publish nothing, and the caller reads the
marker after the writes and publishes only then (spread.py).

Player profiles (store/redis/profiles.py), shared by every board, in PROFILE_BUCKETS hashes
(each its own hash tag, so they spread over a Cluster's nodes; a player's bucket is the
CRC-32 of the username):

    {prefix}:{profiles|N}             hash: username -> "<version>:<JSON [displayName,
                                      metadata]>", a cache of the player_profiles table

The instance registry (store/redis/instances.py; docs/reliability.md, "Fence"), one hash
tag so its scripts run on one Cluster slot:

    {prefix}:{instances}:members      sorted set: instance id -> heartbeat deadline (ms,
                                      the Redis server's clock)
    {prefix}:{instances}:fenced       hash: instance id -> the latest fence it passed
    {prefix}:{instances}:fence        the latest fence asked for (ms, Redis clock)
    {prefix}:{instances}:since        when this registry began (ms): younger than a
                                      heartbeat round after Redis lost its data
    {prefix}:{instances}:dirty:<id>   set of "board|period" the instance may have
                                      unflushed events of (reconciled if it dies)

Keys expire `retention` after their period ends (never for a board that never resets),
except the event-id buckets, which expire with the window (above).
A period loaded with nothing in it (no history row) that is not live (not the current
period, nor one period either side of it: clock skew between instances) keeps its
loaded marker only `EMPTY_PERIOD_EXPIRY`: a read of a far-past or far-future period
leaves no lasting state (docs/reliability.md). The first write to a period extends its
marker to the period's own expiry (increment.lua, claims.lua).
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from store.boards import Board, ResetPeriod, board_index
from store.event_window import DEFAULT_EVENT_ID_WINDOW

PROFILE_BUCKETS = 16
"""Hashes the profile cache spreads over: a read of 100 players is one HMGET per bucket
touched, in one pipeline (one round trip per Cluster node)."""
MIN_EXPIRY = timedelta(hours=1)
"""A past period loaded again (to be read) stays at least this long."""
EMPTY_PERIOD_EXPIRY = timedelta(seconds=60)
"""How long the marker of an empty period that is not live lasts: reads in the meantime
cost Redis only; afterwards the next read checks the history again (one query)."""
_LONGEST_PERIOD = {
    ResetPeriod.DAILY: timedelta(days=1),
    ResetPeriod.WEEKLY: timedelta(weeks=1),
    ResetPeriod.MONTHLY: timedelta(days=31),
}


@dataclass(frozen=True, slots=True)
class InstanceKeys:
    """The keys of the instance registry (no expiry: heartbeats keep them small)."""

    members: str
    fenced: str
    fence: str
    since: str

    def dirty(self, instance: str) -> str:
        """The set of board periods `instance` declared it writes to."""
        return f"{self.members.removesuffix(':members')}:dirty:{instance}"


@dataclass(frozen=True, slots=True)
class EventWindow:
    """The event-id buckets a write checks now: the current one (where new ids go) and the
    one before it, and how long the current one must live (ms: until two windows after
    its start, so an id written at its end is still remembered one window later)."""

    current: str
    previous: str
    current_ttl_ms: int


@dataclass(frozen=True, slots=True)
class PeriodKeys:
    """The keys of one board period (of one shard, for a sharded board)."""

    ranking: str
    events: str
    loaded: str
    rebuild: str
    writers: str
    claims: str
    """The board period's event-id record: `events` itself on an unsharded board (the
    base name of its buckets, `KeyLayout.event_window`)."""


class KeyLayout:
    """Key names, channels and expiry of the configured boards under one key prefix."""

    def __init__(
        self,
        prefix: str,
        boards: Sequence[Board],
        retention: timedelta,
        clock: Callable[[], float] = time.time,
        event_id_window: timedelta = DEFAULT_EVENT_ID_WINDOW,
    ) -> None:
        self._prefix = prefix
        self._boards = board_index(boards)  # live: boards created at run time show through
        self._retention = retention
        self._clock = clock
        self._window_ms = max(1, int(event_id_window.total_seconds() * 1000))

    def event_bucket(self) -> int:
        """The idempotency window's current bucket: the `id_life` of an id recorded now."""
        return int(self._clock() * 1000) // self._window_ms

    def event_window(self, events: str, bucket: int | None = None) -> EventWindow:
        """The buckets of the event-id record named `events` (`PeriodKeys.events` or
        `.claims`) that a write checks at this instant, or in `bucket` (module doc)."""
        now_ms = int(self._clock() * 1000)
        if bucket is None:
            bucket = now_ms // self._window_ms
        return EventWindow(
            current=f"{events}:{bucket}",
            previous=f"{events}:{bucket - 1}",
            current_ttl_ms=max(1, (bucket + 2) * self._window_ms - now_ms),
        )

    def board(self, board_id: str) -> Board:
        """The configured board; `ValueError` for an unknown one."""
        board = self._boards.get(board_id)
        if board is None:
            raise ValueError(f"unknown board {board_id!r}")
        return board

    def keys(self, board: str, period: str, shard: int = 0) -> PeriodKeys:
        """The keys of a board period's shard (shard 0 of an unsharded board)."""
        # A sharded board's shards carry different hash tags: different Cluster slots.
        # The rebuild claim is per board period, whatever the shard.
        claim_tag = f"{self._prefix}:{{{board}|{period}}}"
        if self.board(board).shards == 1:
            tag = claim_tag
        else:
            tag = f"{self._prefix}:{{{board}|{period}|{shard}}}"
        return PeriodKeys(
            ranking=f"{tag}:ranking",
            events=f"{tag}:eventids",
            loaded=f"{tag}:loaded",
            rebuild=f"{claim_tag}:rebuild",
            writers=f"{tag}:writers",
            claims=f"{claim_tag}:eventids",
        )

    def instances(self) -> InstanceKeys:
        """The instance registry's keys."""
        tag = f"{self._prefix}:{{instances}}"
        return InstanceKeys(
            members=f"{tag}:members",
            fenced=f"{tag}:fenced",
            fence=f"{tag}:fence",
            since=f"{tag}:since",
        )

    def profile_bucket(self, username: str) -> str:
        """The profile cache hash that holds `username`'s entry."""
        bucket = zlib.crc32(username.encode("utf-8")) % PROFILE_BUCKETS
        return f"{self._prefix}:{{profiles|{bucket}}}"

    def player_keys(self, board: str, period: str, username: str) -> PeriodKeys:
        """The keys of the shard that holds `username`."""
        return self.keys(board, period, self.board(board).shard_of(username))

    def all_shard_keys(self, board: str, period: str) -> list[PeriodKeys]:
        """The keys of every shard of a board period (one entry when unsharded)."""
        shards = self.board(board).shards
        if shards == 1:
            return [self.keys(board, period)]
        return [self.keys(board, period, shard) for shard in range(shards)]

    def watched(self, board: str) -> str:
        """The board's watcher marker (module doc)."""
        return f"{self._prefix}:watched:{board}"

    def channel(self, board: str) -> str:
        """The pub/sub channel of a board's changes."""
        return f"{self._prefix}:changes:{board}"

    def expire_at_ms(self, board_id: str, period: str, *, empty: bool = False) -> int:
        """When a period's keys expire (Unix ms), 0 for never: `retention` after it ends
        (its end in the board's zone: a period of a zone west of UTC ends hours after the
        UTC midnight); `EMPTY_PERIOD_EXPIRY` from now for an `empty` period that is not live."""
        board = self.board(board_id)
        if not board.is_valid_period(period):
            raise ValueError(f"{period!r} is not a period of board {board_id!r}")
        end = board.period_end(period)
        if end is None:
            return 0
        if empty:
            # Live: ends after the start of the previous period and no later than the end
            # of the next one (one period of clock skew either way, counted generously).
            longest = _LONGEST_PERIOD[board.reset].total_seconds()
            now = self._clock()
            if not now - longest < end.timestamp() <= now + 2 * longest:
                return int((now + EMPTY_PERIOD_EXPIRY.total_seconds()) * 1000)
        # In milliseconds: a datetime past year 9999 overflows.
        end_ms = int(end.timestamp() * 1000) + int(self._retention.total_seconds() * 1000)
        return max(end_ms, int((self._clock() + MIN_EXPIRY.total_seconds()) * 1000))


def fingerprint(username: str, delta: int) -> str:
    """What an event id is bound to: the increment's parameters, `<delta>:<username>`
    (a delta has no colon, so the pair reads back unambiguously)."""
    return f"{delta}:{username}"


def stored_score(total: int) -> int:
    """The sorted-set score of a total (negated: see the module doc)."""
    return -total


def total_of(stored: float) -> int:
    """The total of a sorted-set score (exact: every stored score is an integer within
    +-(2^53 - 1))."""
    return -int(stored)


def instants_key(keys: PeriodKeys) -> str:
    """The instants hash next to a period's ranking (same hash tag: same Cluster slot)."""
    return keys.ranking.removesuffix("ranking") + "instants"
