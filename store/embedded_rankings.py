"""One board period's ranking in process memory, for the embedded store.

`SummedRanking` serves INCREMENT boards ranked high first with shared ties: a dict of
scores and a sorted list of (-score, username), so list order is the leaderboard order.
`RuledRanking` serves every other rule, order and tie-break: (sign * score, instant,
username), the twin of write.lua (docs/boards.md). `check_caps` is the caps rule both obey;
`apply_ruled` applies a write batch to rankings of either kind.
Owned by store/embedded_ranking.py; imports only store modules.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping, Sequence

from sortedcontainers import SortedList

from store.board_kinds import TieBreak, UpdateRule
from store.board_model import kept_score
from store.boards import Board
from store.errors import EventIdReused, ScoreBeyondCap, ScoreOutOfRange
from store.event_window import EventIdWindow
from store.models import (
    MAX_EXACT_SCORE,
    IncrementOutcome,
    PageKey,
    RankedPlayer,
    ScoreChange,
    ScoreIncrement,
)


class SummedRanking:
    """One loaded board period."""

    __slots__ = ("clock", "events", "order", "scores", "writers")

    def __init__(self, totals: dict[str, int], events: EventIdWindow) -> None:
        self.scores = totals
        self.order = SortedList((-score, username) for username, score in totals.items())
        self.events = events
        """Each client event id applied within the window, bound to its increment's
        (username, delta)."""
        self.clock: int | None = None
        self.writers: dict[str, int] = {}
        """Each writer's last applied sequence in the period (`writer_replays`)."""

    def player_rank(self, username: str, score: int) -> int:
        """The rank of a player with this score."""
        return self.rank(score)

    def position(self, username: str, score: int) -> int:
        """Where the player stands in the list (0 first)."""
        return int(self.order.index((-score, username)))

    def put(self, username: str, score: int, instant: int) -> None:
        """`set_score` (no instant is kept on these boards)."""
        self.set_score(username, score)

    def rank(self, score: int) -> int:
        """1 + the number of players with a strictly higher score."""
        # "" sorts before every username, so this counts the entries above `score`.
        return 1 + int(self.order.bisect_left((-score, "")))

    def page(self, start: int, stop: int) -> list[RankedPlayer]:
        """The players at positions start .. stop - 1 with their competition ranks."""
        players: list[RankedPlayer] = []
        rank = 0
        count = len(self.scores)
        for position, (stored, username) in enumerate(self.order.islice(start, stop), start):
            score = -stored
            if not players:
                rank = self.rank(score)
            elif score != players[-1].score:
                rank = position + 1
            players.append(
                RankedPlayer(username=username, score=score, rank=rank, player_count=count)
            )
        return players

    def drop(self, username: str) -> int | None:
        """Take a player out; the score it had, or None."""
        old = self.scores.pop(username, None)
        if old is not None:
            self.order.remove((-old, username))
        return old

    def keys(self, start: int, stop: int) -> list[PageKey]:
        """The order keys (stored score, member) of the players at start .. stop - 1."""
        return list(self.order.islice(start, stop))

    def position_after(self, key: PageKey) -> int:
        """How many players come up to and including the place `key`."""
        return int(self.order.bisect_right(key))

    def set_score(self, username: str, score: int) -> None:
        """Give a player a new total, keeping the order in step."""
        old = self.scores.get(username)
        if old is not None:
            self.order.remove((-old, username))
        self.scores[username] = score
        self.order.add((-score, username))


class RuledRanking:
    """One loaded period of a board of another order, tie-break or rule: entries
    (sign * score, instant, username), the instant 0 unless the board is EARLIEST."""

    __slots__ = ("clock", "earliest", "events", "instants", "order", "scores", "sign", "writers")

    def __init__(
        self,
        board: Board,
        totals: dict[str, int],
        events: EventIdWindow,
        instants: Mapping[str, int],
        clock: int | None,
    ) -> None:
        self.sign = board.sign
        self.earliest = board.tie_break is TieBreak.EARLIEST
        self.scores = totals
        self.instants = {name: instants.get(name, 0) for name in totals} if self.earliest else {}
        self.order = SortedList(self._entry(name, score) for name, score in totals.items())
        self.events = events
        self.clock = clock
        self.writers: dict[str, int] = {}

    def _entry(self, username: str, score: int) -> tuple[int, int, str]:
        return (self.sign * score, self.instants.get(username, 0), username)

    def rank(self, score: int) -> int:
        """1 + the number of players with a strictly better score."""
        return 1 + int(self.order.bisect_left((self.sign * score,)))

    def player_rank(self, username: str, score: int) -> int:
        """The rank of a player with this score: unique on EARLIEST boards."""
        if self.earliest:
            return 1 + self.position(username, score)
        return self.rank(score)

    def position(self, username: str, score: int) -> int:
        """Where the player stands in the list (0 first)."""
        return int(self.order.index(self._entry(username, score)))

    def page(self, start: int, stop: int) -> list[RankedPlayer]:
        """The players at positions start .. stop - 1 with their ranks."""
        players: list[RankedPlayer] = []
        rank = 0
        for position, (stored, _, username) in enumerate(self.order.islice(start, stop), start):
            score = self.sign * stored
            if self.earliest:
                rank = position + 1
            elif not players:
                rank = self.rank(score)
            elif score != players[-1].score:
                rank = position + 1
            players.append(
                RankedPlayer(
                    username=username, score=score, rank=rank, player_count=len(self.scores)
                )
            )
        return players

    def keys(self, start: int, stop: int) -> list[PageKey]:
        """The order keys (stored score, member) of the players at start .. stop - 1, as the
        Redis store's sorted set holds them (the member behind its instant on EARLIEST)."""
        return [
            (stored, f"{instant:016x}{username}" if self.earliest else username)
            for stored, instant, username in self.order.islice(start, stop)
        ]

    def position_after(self, key: PageKey) -> int:
        """How many players come up to and including the place `key`."""
        stored, member = key
        instant, username = 0, member
        if self.earliest:
            # A member not of this board (a forged cursor) is still a place in the order.
            with contextlib.suppress(ValueError):
                instant, username = int(member[:16], 16), member[16:]
        return int(self.order.bisect_right((stored, instant, username)))

    def set_score(self, username: str, score: int) -> None:
        """`put` without an instant (never called: these boards take `_apply_ruled`)."""
        self.put(username, score, 0)

    def drop(self, username: str) -> int | None:
        """Take a player out; the score it had, or None."""
        old = self.scores.get(username)
        if old is not None:
            self.order.remove(self._entry(username, old))
            del self.scores[username]
            self.instants.pop(username, None)
        return old

    def put(self, username: str, score: int, instant: int) -> None:
        """Give a player a new kept score, reached at `instant` (kept on EARLIEST boards)."""
        old = self.scores.get(username)
        if old is not None:
            self.order.remove(self._entry(username, old))
        self.scores[username] = score
        if self.earliest:
            self.instants[username] = instant
        self.order.add(self._entry(username, score))


def check_caps(board: Board, increment: ScoreIncrement, new: int) -> None:
    """Raise `ScoreBeyondCap` when a write breaks the board's caps: they bound the
    submission on BEST/LATEST boards, the total on INCREMENT ones (as write.lua)."""
    total = board.update_rule is UpdateRule.INCREMENT
    capped = new if total else increment.delta
    if board.min_score is not None and capped < board.min_score:
        raise ScoreBeyondCap(
            increment.username,
            board.id,
            capped,
            below=True,
            bound=board.min_score,
            total=total,
        )
    if board.max_score is not None and capped > board.max_score:
        raise ScoreBeyondCap(
            increment.username,
            board.id,
            capped,
            below=False,
            bound=board.max_score,
            total=total,
        )


def writer_replays(
    increments: Sequence[ScoreIncrement],
    rankings: Mapping[tuple[str, str], SummedRanking | RuledRanking],
) -> tuple[list[bool], dict[tuple[str, str], dict[str, int]]]:
    """Which increments belong to a replayed writer's call, and the sequences the batch's
    other writer calls record per period: the twin of common.lua `check_writers` (a call
    is a replay when a period it touches has its sequence or a later one)."""
    replayed = [False] * len(increments)
    recorded: dict[tuple[str, str], dict[str, int]] = {}
    start = 0
    while start < len(increments):
        first = increments[start]
        stop = start + 1
        writer = first.writer_id
        if writer is None:
            start = stop
            continue
        while stop < len(increments) and (
            increments[stop].writer_id,
            increments[stop].sequence,
            increments[stop].call,
        ) == (writer, first.sequence, first.call):
            stop += 1
        periods = {(increment.board, increment.period) for increment in increments[start:stop]}
        replay = any(
            first.sequence <= recorded.get(key, rankings[key].writers).get(writer, -1)
            for key in periods
        )
        if replay:
            replayed[start:stop] = [True] * (stop - start)
        else:
            for key in periods:
                recorded.setdefault(key, dict(rankings[key].writers))[writer] = first.sequence
        start = stop
    return replayed, recorded


def apply_ruled(
    increments: Sequence[ScoreIncrement],
    rankings: Mapping[tuple[str, str], SummedRanking | RuledRanking],
    boards: Mapping[str, Board],
) -> tuple[list[IncrementOutcome], list[ScoreChange]]:
    """A write batch, all or nothing: each board's rule, order, ties and caps (the twin of
    increment.lua on `Board.plain` boards, of write.lua on the others); the outcomes, and
    the changes to publish."""
    # Pass 1 simulates the batch, so that nothing changes when any write is refused.
    replayed, writers = writer_replays(increments, rankings)
    duplicate: list[bool] = []
    scores: dict[tuple[str, str, str], int | None] = {}
    seen: dict[tuple[str, str, str], tuple[str, int]] = {}
    for increment, is_replayed in zip(increments, replayed, strict=True):
        if is_replayed:  # a writer's call already applied: a replay, whatever its event ids
            duplicate.append(True)
            continue
        board = boards[increment.board]
        ranking = rankings[(increment.board, increment.period)]
        event = (increment.board, increment.period, increment.event_id)
        bound = (increment.username, increment.delta)
        if increment.client_event_id:
            recorded = seen.get(event) or ranking.events.get(increment.event_id)
            if recorded is not None:
                if recorded != bound:
                    raise EventIdReused(increment.event_id)
                duplicate.append(True)
                continue
            seen[event] = bound
        duplicate.append(False)
        player = (increment.board, increment.period, increment.username)
        old = scores[player] if player in scores else ranking.scores.get(increment.username)
        new = kept_score(board.update_rule, board.sort_order, old, increment.delta)
        if abs(new) > MAX_EXACT_SCORE:
            raise ScoreOutOfRange(increment.username, increment.board)
        check_caps(board, increment, new)
        scores[player] = new

    # Pass 2 applies.
    now_us = time.time_ns() // 1000
    outcomes: list[IncrementOutcome] = []
    changes: list[ScoreChange] = []
    for increment, is_duplicate in zip(increments, duplicate, strict=True):
        board = boards[increment.board]
        ranking = rankings[(increment.board, increment.period)]
        username = increment.username
        old = ranking.scores.get(username)
        previous_rank = None if old is None else ranking.player_rank(username, old)
        if is_duplicate:
            rank = ranking.rank(0) if old is None else ranking.player_rank(username, old)
            outcomes.append(
                IncrementOutcome(
                    increment=increment,
                    score=old or 0,
                    rank=rank,
                    applied=False,
                    previous_score=old,
                    previous_rank=previous_rank,
                )
            )
            continue
        new = kept_score(board.update_rule, board.sort_order, old, increment.delta)
        instant = None
        if board.keeps_instants:
            # tiebreak.next_instant: strictly increasing per period, as Redis' clock is.
            clock = ranking.clock
            instant = ranking.clock = now_us if clock is None else max(now_us, clock + 1)
        # increment.lua writes and publishes every applied increment, even one that leaves
        # the total as it was (a zero delta, which the service refuses before the store).
        changed = old is None or new != old or board.plain
        if changed:
            ranking.put(username, new, instant or 0)
        id_life = 0
        if increment.client_event_id:
            ranking.events.remember(increment.event_id, (username, increment.delta))
            id_life = ranking.events.bucket
        rank = ranking.player_rank(username, new)
        outcomes.append(
            IncrementOutcome(
                increment=increment,
                score=new,
                rank=rank,
                applied=True,
                previous_score=old,
                previous_rank=previous_rank,
                instant=instant,
                id_life=id_life,
            )
        )
        if changed:
            changes.append(
                ScoreChange(
                    board=increment.board,
                    period=increment.period,
                    username=username,
                    previous_score=old,
                    score=new,
                    previous_rank=previous_rank,
                    rank=rank,
                )
            )
    for key, sequences in writers.items():
        rankings[key].writers = sequences
    return outcomes, changes
