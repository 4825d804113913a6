"""What one instance knows of a board's watched players and top lists, and the arithmetic
that keeps it right from change events alone (no store round trip per watcher).

`Feed` is one board's state: its current period, the watched players (`PlayerState`) with an
index of their scores, and the top lists (`TopGroup`) shared by their watchers. A watched
player's rank moves by one when another player crosses its score (`Feed.crossed`); a top
list is re-read only when an event can change it (`TopGroup.may_change`). The tasks that
consume the feeds, re-read and resync are in resolvers/live.py.
"""

from __future__ import annotations

import asyncio
import bisect
from dataclasses import dataclass, field, replace

from resolvers.mailbox import Mailbox
from store.board_kinds import SortOrder, TieBreak
from store.boards import Board
from store.models import RankedPlayer, ScoreChange


@dataclass(frozen=True, slots=True)
class RankUpdate:
    """A change in one player's standing, as `rankChanged` yields it."""

    username: str
    board: str
    period: str
    score: int
    rank: int
    previous_rank: int | None


def merge_rank_updates(older: RankUpdate, newer: RankUpdate) -> RankUpdate:
    """Two updates the client has not taken yet, as one."""
    # The client never saw `older`: the merged update's previous rank is the one before it,
    # i.e. what the client last saw, unless the period changed in between (then the newer
    # update's own previous rank, None for a first score in the new period, is the honest one).
    if older.period != newer.period:
        return newer
    return replace(newer, previous_rank=older.previous_rank)


def keep_newest(_older: list[RankedPlayer], newer: list[RankedPlayer]) -> list[RankedPlayer]:
    """Two top lists the client has not taken yet: only the newer counts."""
    return newer


class PlayerWatcher:
    """One `rankChanged` subscription: its queue and the last update queued to it."""

    __slots__ = ("last", "mailbox", "ready")

    def __init__(self, capacity: int) -> None:
        self.mailbox: Mailbox[RankUpdate] = Mailbox(capacity, merge_rank_updates)
        self.last: RankUpdate | None = None
        # False until the watcher's first snapshot is queued; updates before that would race it.
        self.ready = False


class TopWatcher:
    """One `topPlayersChanged` subscription."""

    __slots__ = ("mailbox", "ready")

    def __init__(self, capacity: int) -> None:
        self.mailbox: Mailbox[list[RankedPlayer]] = Mailbox(capacity, keep_newest)
        self.ready = False


@dataclass(eq=False, slots=True)
class PlayerState:
    """What this instance knows of one watched player in the board's current period."""

    username: str
    score: int | None = None
    rank: int | None = None
    # Bumped by every event-driven change: a read that overlapped one is not applied,
    # because it may predate the event (the next resync checks again).
    changes: int = 0
    reads_started: int = 0
    reads_applied: int = 0
    watchers: set[PlayerWatcher] = field(default_factory=set)


@dataclass(eq=False, slots=True)
class TopGroup:
    """All watchers of one board's top `limit`: they share the list and its re-reads."""

    limit: int
    players: list[RankedPlayer] | None = None
    usernames: frozenset[str] = frozenset()
    reads_started: int = 0
    reads_applied: int = 0
    dirty: bool = False
    last_read: float = float("-inf")
    refresher: asyncio.Task[None] | None = None
    watchers: set[TopWatcher] = field(default_factory=set)

    def may_change(self, change: ScoreChange, order: SortOrder = SortOrder.DESC) -> bool:
        """Whether the change can alter this top list (then it is re-read)."""
        players = self.players
        return (
            players is None
            or len(players) < self.limit
            or change.username in self.usernames
            # Equal to the lowest shown can still enter: ties are ordered by username.
            or (
                change.score >= players[-1].score
                if order is SortOrder.DESC
                else change.score <= players[-1].score
            )
        )


@dataclass(eq=False, slots=True)
class Feed:
    """One board's live state on this instance."""

    board: Board
    period: str
    # Bumped at each rollover, so that a read of the old period is never applied to the new one.
    epoch: int = 0
    players: dict[str, PlayerState] = field(default_factory=dict)
    # (score, username) of every watched player with a score, ascending: an event finds the
    # watchers whose rank it moves by bisection instead of visiting every watcher.
    index: list[tuple[int, str]] = field(default_factory=list)
    tops: dict[int, TopGroup] = field(default_factory=dict)
    resync_now: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    # Whether this instance holds the board (`ChangeFeed.watch`) for its watchers: only
    # then do writes publish the board's changes.
    held: bool = False

    def begin_period(self, period: str) -> None:
        """Roll over to a new period: nobody has a score in it until they score (or a resync
        finds one that another instance saw first); reads of the old period are void."""
        self.period = period
        self.epoch += 1
        self.index.clear()
        for state in self.players.values():
            state.score = None
            state.rank = None
            state.changes += 1

    def _key(self, score: int) -> int:
        # The index is kept in "higher is better" terms: ASC boards index -score.
        return score if self.board.sort_order is SortOrder.DESC else -score

    def set_standing(self, state: PlayerState, score: int | None, rank: int | None) -> None:
        """Record a watched player's standing, keeping the index in step."""
        if state.score != score:
            self.unindex(state)
            state.score = score
            if score is not None:
                bisect.insort(self.index, (self._key(score), state.username))
        state.rank = rank

    def unindex(self, state: PlayerState) -> None:
        """Take a watched player out of the index (it has no score, or is no longer watched)."""
        if state.score is None:
            return
        key = (self._key(state.score), state.username)
        position = bisect.bisect_left(self.index, key)
        if position < len(self.index) and self.index[position] == key:
            del self.index[position]

    def crossed(self, change: ScoreChange) -> list[PlayerState]:
        """Move by one the rank of every watched player whose score the mover crossed, and
        return them.

        In "higher is better" terms (`_key`): the mover is above a score s iff its score is
        strictly greater (competition ranks), so moving up from p to n passes exactly the
        scores in [p, n) and falling from p to n drops below exactly those in [n, p); a new
        player (p None) passes those below n; a removed player leaves from its score s, and
        those below s move up. On EARLIEST boards ranks are unique: a player
        reaching n ranks after those already at n (as above), and of the players tied at p
        the mover passed only those it was behind (rising) or drops below only those it was
        ahead of (falling), which the ranks before the change tell.
        """
        before = None if change.previous_score is None else self._key(change.previous_score)
        after = self._key(change.score)
        low: int | None
        if change.removed:
            # Gone from the ranking: as if it fell below everyone, from the score it had.
            before = after
            low, high, step = None, after, -1
        elif before == after:
            return []
        elif before is None or before < after:
            low, high, step = before, after, 1
        else:
            low, high, step = after, before, -1
        # (score, "") sorts before every (score, username): usernames are never empty.
        start = 0 if low is None else bisect.bisect_left(self.index, (low, ""))
        end = bisect.bisect_left(self.index, (high, ""), lo=start)
        earliest = self.board.tie_break is TieBreak.EARLIEST
        candidates = self.index[start:end]
        if earliest and step == -1 and before is not None:
            tied_end = bisect.bisect_left(self.index, (before + 1, ""), lo=end)
            candidates += self.index[end:tied_end]
        moved: list[PlayerState] = []
        for key, username in candidates:
            state = self.players.get(username)
            if username == change.username or state is None or state.rank is None:
                continue
            if earliest and key == before:
                mover_rank = change.previous_rank
                if mover_rank is None:
                    continue
                if step == 1 and mover_rank < state.rank:
                    continue  # the mover was ahead already
                if step == -1 and mover_rank > state.rank:
                    continue  # the mover was behind already
            state.changes += 1
            state.rank = max(1, state.rank + step)
            moved.append(state)
        return moved
