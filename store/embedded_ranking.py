"""Live rankings in this process: the single-instance (embedded) `RankingStore`.

Same semantics as the Redis store, without a server: per board period, a dict of
scores and a sorted list of (-score, username), so that list order is the
leaderboard order (score descending, ties by username ascending). Boards of another
rule, order or tie-break keep (sign * score, instant, username) instead (`RuledRanking`,
the twin of write.lua: docs/boards.md). The per-period structures and the rule arithmetic
are in store/embedded_rankings.py. Every method runs without awaiting in the middle, so
each one is atomic on the event loop.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from store.board_kinds import SortOrder, TieBreak, UpdateRule
from store.boards import Board, board_index
from store.embedded_rankings import RuledRanking, SummedRanking, apply_ruled
from store.errors import RankingNotLoaded, ScoreOutOfRange
from store.event_window import DEFAULT_EVENT_ID_WINDOW, EventIdWindow
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
from store.tiebreak import next_instant

DEFAULT_CHANGE_BUFFER = 1024
"""Changes a slow subscriber may fall behind by before the oldest are dropped."""


@dataclass(slots=True)
class _Claim:
    token: str
    expires_at: float


class EmbeddedRankingStore:
    """`RankingStore` in process memory, for a single instance with no Redis."""

    def __init__(
        self,
        *,
        boards: Sequence[Board],
        change_buffer: int = DEFAULT_CHANGE_BUFFER,
        event_id_window_seconds: float = DEFAULT_EVENT_ID_WINDOW.total_seconds(),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._boards = board_index(boards)  # live: boards created at run time show through
        self._change_buffer = change_buffer
        # Client event ids are remembered for the window, not the period (event_window.py).
        self._event_id_window = event_id_window_seconds
        self._clock = clock
        self._rankings: dict[tuple[str, str], SummedRanking | RuledRanking] = {}
        self._claims: dict[tuple[str, str], _Claim] = {}
        self._subscribers: dict[str, set[asyncio.Queue[ScoreChange]]] = {}

    # Writes

    async def increment(
        self, increments: Sequence[ScoreIncrement], *, ranks: bool = True
    ) -> list[IncrementOutcome]:
        """Apply increments in order, all or none; publish each applied one (ranks are
        computed whatever `ranks` says: they cost nothing extra here)."""
        for increment in increments:
            if abs(increment.delta) > MAX_EXACT_SCORE:
                raise ScoreOutOfRange(increment.username, increment.board)
            self._check_period(increment.board, increment.period)
        rankings: dict[tuple[str, str], SummedRanking | RuledRanking] = {}
        for increment in increments:
            key = (increment.board, increment.period)
            if key not in rankings:
                rankings[key] = self._loaded(*key)
        applied, published = apply_ruled(increments, rankings, self._boards)
        for change in published:
            self._publish(change)
        return applied

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
        """Replace the period's ranking, event ids and writers' sequences, then mark it
        loaded, atomically (`instants`, `clock`, `writers`: see `RebuildTarget.load`)."""
        self._check_period(board, period)
        scores = dict(totals)
        for username, total in scores.items():
            if abs(total) > MAX_EXACT_SCORE:
                raise ScoreOutOfRange(username, board)
        events = EventIdWindow(
            self._event_id_window,
            self._clock,
            ((event_id, (username, delta)) for username, event_id, delta in client_events),
        )
        config = self._boards[board]
        ranking: SummedRanking | RuledRanking
        if (
            config.update_rule is UpdateRule.INCREMENT
            and config.sort_order is SortOrder.DESC
            and config.tie_break is TieBreak.SHARED
        ):
            ranking = SummedRanking(scores, events)
        else:
            ranking = RuledRanking(config, scores, events, instants or {}, clock)
        ranking.writers = dict(writers)
        self._rankings[(board, period)] = ranking

    # Moderation

    async def remove(self, board: str, period: str, username: str) -> RemovedScore | None:
        """Take the player out of the period's ranking; what it removed, or None."""
        self._check_period(board, period)
        ranking = self._loaded(board, period)
        score = self._take_out(ranking, board, period, username)
        if score is None:
            return None
        instant = None
        if self._boards[board].keeps_instants:
            # The removal row's instant, on the clock of the period's writes (apply_ruled).
            instant = ranking.clock = next_instant(time.time_ns() // 1000, ranking.clock)
        return RemovedScore(score=score, instant=instant)

    async def restore(
        self, board: str, period: str, username: str, total: int, instant: int = 0
    ) -> bool:
        """Set the player's kept score (reached at `instant`); False when not loaded."""
        self._check_period(board, period)
        if abs(total) > MAX_EXACT_SCORE:
            raise ScoreOutOfRange(username, board)
        ranking = self._rankings.get((board, period))
        if ranking is None:
            return False
        old = ranking.scores.get(username)
        previous_rank = None if old is None else ranking.player_rank(username, old)
        ranking.put(username, total, instant)
        self._publish(
            ScoreChange(
                board=board,
                period=period,
                username=username,
                previous_score=old,
                score=total,
                previous_rank=previous_rank,
                rank=ranking.player_rank(username, total),
            )
        )
        return True

    async def erase(self, board: str, period: str, username: str, event_ids: Sequence[str]) -> int:
        """Take the player out (when the period is in memory) and forget their `event_ids`."""
        self._check_period(board, period)
        ranking = self._rankings.get((board, period))
        if ranking is None:
            return 0
        for event_id in event_ids:
            ranking.events.forget(event_id, username)
        return 0 if self._take_out(ranking, board, period, username) is None else 1

    def _take_out(
        self, ranking: SummedRanking | RuledRanking, board: str, period: str, username: str
    ) -> int | None:
        old = ranking.scores.get(username)
        if old is None:
            return None
        rank = ranking.player_rank(username, old)
        ranking.drop(username)
        self._publish(
            ScoreChange(
                board=board,
                period=period,
                username=username,
                previous_score=old,
                score=old,
                previous_rank=rank,
                rank=rank,
                removed=True,
            )
        )
        return old

    # Reads

    async def top(self, board: str, period: str, limit: int, offset: int) -> list[RankedPlayer]:
        """Players ranked offset+1 .. offset+limit, best first."""
        if limit < 0 or offset < 0:
            raise ValueError("limit and offset must not be negative")
        return self._loaded(board, period).page(offset, offset + limit)

    async def player(self, board: str, period: str, username: str) -> RankedPlayer | None:
        """One player's standing, or None without a score in the period."""
        ranking = self._loaded(board, period)
        score = ranking.scores.get(username)
        if score is None:
            return None
        return RankedPlayer(
            username=username,
            score=score,
            rank=ranking.player_rank(username, score),
            player_count=len(ranking.scores),
        )

    async def neighborhood(
        self, board: str, period: str, username: str, radius: int, *, fill: bool = False
    ) -> list[RankedPlayer]:
        """The player and up to `radius` players directly above and below, best first
        (with `fill`, 2 * radius + 1 whenever the period has that many)."""
        if radius < 0:
            raise ValueError("radius must not be negative")
        ranking = self._loaded(board, period)
        score = ranking.scores.get(username)
        if score is None:
            return []
        position = ranking.position(username, score)
        start = position - radius
        if fill:
            start = min(start, len(ranking.order) - (2 * radius + 1))
        start = max(0, start)
        stop = start + 2 * radius + 1 if fill else position + radius + 1
        return ranking.page(start, stop)

    async def players(
        self, board: str, period: str, usernames: Sequence[str]
    ) -> list[RankedPlayer]:
        """The named players that have a score, best first (rank, then username)."""
        ranking = self._loaded(board, period)
        count = len(ranking.scores)
        players = [
            RankedPlayer(
                username=username,
                score=score,
                rank=ranking.player_rank(username, score),
                player_count=count,
            )
            for username in usernames
            if (score := ranking.scores.get(username)) is not None
        ]
        players.sort(key=lambda player: (player.rank, player.username))
        return players

    async def page(self, board: str, period: str, first: int, after: PageKey | None) -> RankingPage:
        """Up to `first` players after the place `after` (from the top without one)."""
        if first < 0:
            raise ValueError("first must not be negative")
        ranking = self._loaded(board, period)
        start = 0 if after is None else ranking.position_after(after)
        players = ranking.page(start, start + first)
        return RankingPage(
            players=tuple(players),
            keys=tuple(ranking.keys(start, start + first)),
            total=len(ranking.scores),
            has_next=start + len(players) < len(ranking.scores),
        )

    async def player_count(self, board: str, period: str) -> int:
        """How many players have a score in the period."""
        return len(self._loaded(board, period).scores)

    async def totals(self, board: str, period: str) -> dict[str, int]:
        """Every player's total in the period."""
        return dict(self._loaded(board, period).scores)

    async def is_loaded(self, board: str, period: str) -> bool:
        """Whether the period was loaded since this store started."""
        return (board, period) in self._rankings

    # Rebuild claims: only this process competes, but the semantics match Redis.

    async def claim_rebuild(self, board: str, period: str, ttl_seconds: float) -> str | None:
        """Claim a period's rebuild for `ttl_seconds`; the token, or None when claimed."""
        now = time.monotonic()
        claim = self._claims.get((board, period))
        if claim is not None and claim.expires_at > now:
            return None
        token = secrets.token_hex(16)
        self._claims[(board, period)] = _Claim(token, now + ttl_seconds)
        return token

    async def release_rebuild(self, board: str, period: str, token: str) -> None:
        """Give up a claim, only when it is still ours."""
        claim = self._claims.get((board, period))
        if claim is not None and claim.token == token:
            del self._claims[(board, period)]

    # Live changes

    def changes(self, board: str, *, watch: bool = True) -> AsyncIterator[ScoreChange]:
        """Applied increments of the board, from the first `__anext__` on (every change is
        published in process: `watch` changes nothing).

        A subscriber more than `change_buffer` changes behind loses the oldest ones.
        """
        return self._changes(board)

    async def watch(self, board: str) -> None:
        """Nothing to do: every change is published in process."""

    def unwatch(self, board: str) -> None:
        """Nothing to do (see `watch`)."""

    async def _changes(self, board: str) -> AsyncIterator[ScoreChange]:
        queue: asyncio.Queue[ScoreChange] = asyncio.Queue(maxsize=self._change_buffer)
        subscribers = self._subscribers.setdefault(board, set())
        subscribers.add(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            subscribers.discard(queue)

    def _publish(self, change: ScoreChange) -> None:
        for queue in self._subscribers.get(change.board, ()):
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(change)

    # Connection

    async def ping(self) -> None:
        """Always answers: there is no server."""

    async def close(self) -> None:
        """Nothing to release."""

    # Helpers

    def _loaded(self, board: str, period: str) -> SummedRanking | RuledRanking:
        ranking = self._rankings.get((board, period))
        if ranking is None:
            raise RankingNotLoaded(board, period)
        return ranking

    def _check_period(self, board_id: str, period: str) -> None:
        board = self._boards.get(board_id)
        if board is None:
            raise ValueError(f"unknown board {board_id!r}")
        if not board.is_valid_period(period):
            raise ValueError(f"{period!r} is not a period of board {board_id!r}")
