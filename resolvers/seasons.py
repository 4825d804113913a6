"""Seasons: the end of each period as an exact, durable event (docs/seasons.md).

`Seasons` runs on every instance:

- **Watermark.** Every `tick_seconds` it takes a batcher barrier at the clock's instant t
  (`WriteBatcher.flushed_through_now`: every event acknowledged before t, or committed
  into a reservation taken before t, is in the history) and records t in
  `instance_watermarks`, with a heartbeat that keeps going while a barrier waits.
- **Finalizer.** Once a board's period has ended, the instance holding its claim (an
  atomic INSERT-or-take-over-when-expired in `period_claims`; every other instance backs
  off) waits until every instance's watermark has passed the period's end, skipping an
  instance whose heartbeat is older than `settle_seconds` (gone: what it had not written
  is lost with it). Then one transaction freezes the final standings, stores the
  `PeriodResult` and, when a webhook is configured, its outbox row; the result's primary
  key makes it exist once even if a lease expired mid-way. The result is announced to
  every instance (`periodEnded`). At start every ended period with events and no result
  is finalized too (a period that ended while every instance was down).
- **Past reads.** `frozen(board, period)` hands the service a final period's reads
  (`resolvers.final_periods.FinalPeriod`), on every kind of board: the standings are the
  rebuild's fold (`fold`) in the board's order and tie-break; `periods` lists a board's
  periods for `Leaderboard.periods`.

The clock is injected (Unix seconds, like the service's), so tests move time by hand.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta

from cachetools import LRUCache

from batcher import WriteBatcher
from resolvers.errors import bad_input
from resolvers.final_periods import FinalPeriod
from store.aio import cancel_and_wait
from store.boards import Board, ResetPeriod, board_index
from store.errors import StoreUnavailable
from store.models import PeriodResult, PeriodSummary
from store.period_notices import PeriodNotices
from store.periods import Calendar
from store.sql.frozen_rows import ranked
from store.sql.standings import SqlStandings

logger = logging.getLogger(__name__)

Fold = Callable[[str, str], Awaitable[tuple[list[tuple[str, int]], dict[str, int] | None]]]
"""A period's kept scores from the history and, on boards that keep them, when each was
reached (`RankingRecovery.fold`: exactly what a rebuild loads)."""

PERIODS_PAGE_MAX = 100
_SUBSCRIBER_QUEUE = 16
_LISTENER_STOP_SECONDS = 5.0
_STOP_SECONDS = 5.0
_FINAL_PERIODS_CACHED = 100_000
# A pass queues the periods that ended since the last one; after a longer pause (a
# suspended host), the start-up catch-up is what finds the older ones.
_MAX_SKIPPED_PERIODS = 64
_NEVER_STARTS_AT = "1970-01-01T00:00:00Z"
"""`startsAt` of a NEVER board's one period `all` (it has no start of its own)."""


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def period_span(board: Board, period: str) -> tuple[datetime | None, datetime | None]:
    """The UTC start and end of a board's period (None, None for NEVER's `all`)."""
    if board.reset is ResetPeriod.NEVER:
        return None, None
    span = Calendar(board.reset, board.time_zone).span(period)
    if span is None:
        return None, None
    return span.start, span.end


def previous_period(board: Board, now: float) -> str | None:
    """The period before the one live at `now` (None on a NEVER board)."""
    if board.reset is ResetPeriod.NEVER:
        return None
    current = board.period_at_timestamp(now)
    start, _ = period_span(board, current)
    if start is None:
        return None
    return board.period_at(start - timedelta(microseconds=1))


def encode_cursor(period: str) -> str:
    """The opaque cursor after `period` in a periods page."""
    return base64.urlsafe_b64encode(period.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    """The period a cursor names, or BAD_USER_INPUT."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return base64.urlsafe_b64decode(padded.encode("ascii")).decode("ascii")
    except (binascii.Error, UnicodeError, ValueError):
        raise bad_input("after is not a cursor of this list") from None


class Seasons:
    """Watermarks, the finalizer, the `periodEnded` fan-out and the reads of final periods."""

    def __init__(
        self,
        *,
        standings: SqlStandings,
        batcher: WriteBatcher,
        boards: Sequence[Board],
        notices: PeriodNotices,
        fold: Fold,
        clock: Callable[[], float] = time.time,
        webhook: bool = False,
        tick_seconds: float = 0.5,
        settle_seconds: float = 30.0,
        claim_seconds: float = 300.0,
        instance: str | None = None,
    ) -> None:
        self._standings = standings
        self._batcher = batcher
        self._boards = board_index(boards)
        self._notices = notices
        self._fold = fold
        self._clock = clock
        self._webhook = webhook
        self._tick_seconds = tick_seconds
        self._settle_ms = _ms(settle_seconds)
        self._claim_ms = _ms(claim_seconds)
        self.instance = instance or secrets.token_hex(8)
        self._flushed_through = clock()
        # Final periods are final for ever: a bounded cache of what this instance saw
        # (a miss costs one primary-key lookup of period_results).
        self._final_counts: LRUCache[tuple[str, str], int] = LRUCache(_FINAL_PERIODS_CACHED)
        self._pending: set[tuple[str, str]] = set()
        self._live_seen: dict[str, str] = {}
        self._watchers: dict[str, set[asyncio.Queue[PeriodResult]]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._listener: asyncio.Task[None] | None = None
        self._started = False
        self.results_made = 0
        """Results this instance computed (tests, logs)."""

    # Lifecycle

    async def start(self) -> None:
        """Record this instance's watermark (it acknowledged nothing before now), then run
        the watermark, the finalizer and the notice listener."""
        self._flushed_through = self._clock()
        self._started = True
        await self._standings.mark(self.instance, _ms(self._flushed_through), _ms(self._clock()))
        self._tasks = [
            asyncio.create_task(self._barrier_loop(), name="seasons barrier"),
            asyncio.create_task(self._heartbeat_loop(), name="seasons heartbeat"),
            asyncio.create_task(self._finalizer_loop(), name="seasons finalizer"),
        ]
        self._listener = asyncio.create_task(
            self._notices.listen(self._heard), name="seasons notices"
        )

    async def stop(self) -> None:
        """Stop the loops (the batcher drains afterwards; then `retire`)."""
        tasks, self._tasks = self._tasks, []
        await cancel_and_wait(tasks, timeout=_STOP_SECONDS, log=logger, what="seasons tasks")

    async def listening(self) -> None:
        """Wait until this instance hears `periodEnded` announcements (tests, probes)."""
        await self._notices.subscribed()

    async def retire(self) -> None:
        """Drop this instance's watermark once its batcher has drained (the others need
        not wait for it any more); a failure leaves it to expire after `settle_seconds`."""
        if not self._started:
            return  # never started: no watermark row, no listener
        listener, self._listener = self._listener, None
        if listener is not None:
            self._notices.stop()
            try:
                await asyncio.wait_for(listener, _LISTENER_STOP_SECONDS)
            except TimeoutError:
                logger.warning("the periodEnded listener did not stop in time")
        await self._notices.close()
        try:
            await self._standings.forget(self.instance)
        except StoreUnavailable as error:
            logger.warning("could not drop this instance's watermark: %s", error)

    # Watermark

    async def _barrier_loop(self) -> None:
        while True:
            instant = self._clock()
            try:
                await self._batcher.flushed_through_now()
            except StoreUnavailable:
                return  # the batcher closed: this instance is stopping
            self._flushed_through = max(self._flushed_through, instant)
            await asyncio.sleep(self._tick_seconds)

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self._tick_seconds)
            try:
                await self._standings.mark(
                    self.instance, _ms(self._flushed_through), _ms(self._clock())
                )
            except StoreUnavailable as error:
                logger.warning("seasons: watermark not recorded: %s", error)

    async def _everyone_flushed(self, end_ms: int) -> bool:
        now_ms = _ms(self._clock())
        for instance, flushed_ms, heartbeat_ms in await self._standings.watermarks():
            if flushed_ms >= end_ms:
                continue
            if instance != self.instance and heartbeat_ms < now_ms - self._settle_ms:
                continue  # gone: its heartbeat stopped more than settle_seconds ago
            return False
        return True

    # Finalizer

    async def _finalizer_loop(self) -> None:
        first = True
        while True:
            try:
                if first:
                    await self._catch_up()
                    first = False
                await self.finalize_due()
            except StoreUnavailable as error:
                logger.warning("seasons: finalizing postponed: %s", error)
            await asyncio.sleep(self._tick_seconds)

    async def _catch_up(self) -> None:
        """Queue every ended period with events and no result (ended while all were down)."""
        now = self._clock()
        for board in list(self._boards.values()):
            if board.reset is ResetPeriod.NEVER:
                continue
            current = board.period_at_timestamp(now)
            finals = await self._standings.final_periods(board.id)
            for period in await self._standings.periods_with_events(board.id):
                if period in finals:
                    self._final_counts[(board.id, period)] = finals[period]
                elif period < current and board.is_valid_period(period):
                    self._pending.add((board.id, period))

    async def finalize_due(self) -> None:
        """One pass: queue every period that ended since the last pass (each board's
        previous period, and any the clock skipped past), try every queued one."""
        now = self._clock()
        for board in list(self._boards.values()):
            for period in self._ended_since_last_pass(board, now):
                if (board.id, period) not in self._final_counts:
                    self._pending.add((board.id, period))
        for key in sorted(self._pending):
            served = self._boards.get(key[0])
            if served is None or await self._finalize(served, key[1]):
                self._pending.discard(key)

    def _ended_since_last_pass(self, board: Board, now: float) -> list[str]:
        """The periods of `board` that ended since the last pass, newest first (the one
        before the live one at least)."""
        if board.reset is ResetPeriod.NEVER:
            return []
        current = board.period_at_timestamp(now)
        seen = self._live_seen.get(board.id, current)
        self._live_seen[board.id] = current
        ended: list[str] = []
        moment = now
        while len(ended) < _MAX_SKIPPED_PERIODS:
            period = previous_period(board, moment)
            if period is None or (ended and period < seen):
                break
            ended.append(period)
            start, _ = period_span(board, period)
            if start is None:
                break
            moment = start.timestamp()
        return ended

    async def _finalize(self, board: Board, period: str) -> bool:
        """Try to make a period final; True once it is (or has nothing to freeze)."""
        existing = await self._standings.result(board.id, period)
        if existing is not None:
            self._final_counts[(board.id, period)] = existing.player_count
            return True
        _, end = period_span(board, period)
        now_ms = _ms(self._clock())
        if end is None or now_ms < _ms(end.timestamp()):
            return False
        if not await self._standings.claim(board.id, period, self.instance, now_ms, self._claim_ms):
            return False  # another instance computes it; its result shows up next pass
        if not await self._everyone_flushed(_ms(end.timestamp())):
            return False  # still ours next pass (the claim renews while we wait)
        delivery_id = secrets.token_hex(16) if self._webhook else None
        # The rebuild's fold (the board's rule, removals, bans), in the board's order.
        scores, instants = await self._fold(board.id, period)
        rows = ranked(board.sort_order, board.tie_break, scores, instants)
        result = await self._standings.freeze(
            board.id, period, rows, now_ms=_ms(self._clock()), delivery_id=delivery_id
        )
        if result is None:
            return False  # someone else's transaction won: read it next pass
        self._final_counts[(board.id, period)] = result.player_count
        if result.player_count == 0:
            return True  # no scores: final (stored, so no one tries again), nothing announced
        self.results_made += 1
        logger.info(
            "period %s of board %s is final: %d players", period, board.id, result.player_count
        )
        await self._notices.publish(result)
        return True

    # periodEnded

    async def _heard(self, result: PeriodResult) -> None:
        self._final_counts[(result.board, result.period)] = result.player_count
        for queue in list(self._watchers.get(result.board, ())):
            if queue.full():
                queue.get_nowait()  # a subscriber that stopped reading loses the oldest
            queue.put_nowait(result)

    async def ended(self, board: str) -> AsyncIterator[PeriodResult]:
        """Every result of `board` announced from now on, once each."""
        queue: asyncio.Queue[PeriodResult] = asyncio.Queue(_SUBSCRIBER_QUEUE)
        watchers = self._watchers.setdefault(board, set())
        watchers.add(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            watchers.discard(queue)
            if not watchers:
                self._watchers.pop(board, None)

    @property
    def subscriber_count(self) -> int:
        """periodEnded subscribers on this instance."""
        return sum(len(watchers) for watchers in self._watchers.values())

    # Reads of final periods

    def forget_counts(self) -> None:
        """Drop the cached player counts of final periods (an erasure changed them): the
        next read of each takes it from its stored result again."""
        self._final_counts.clear()

    async def frozen(self, board: Board, period: str) -> FinalPeriod | None:
        """The reads of `period` when it is final, else None (read it live)."""
        count = self._final_counts.get((board.id, period))
        if count is None:
            if board.reset is ResetPeriod.NEVER or period >= board.period_at_timestamp(
                self._clock()
            ):
                return None  # live or future: never final
            result = await self._standings.result(board.id, period)
            if result is None:
                return None
            count = self._final_counts[(board.id, period)] = result.player_count
        return FinalPeriod(board, period, self._standings, count)

    async def periods(
        self,
        board: Board,
        first: int,
        after: str | None,
        live_count: Callable[[str, str], Awaitable[int]],
    ) -> tuple[list[PeriodSummary], bool]:
        """A page of the board's periods that have scores, newest first, and whether
        more follow. `live_count` counts the players of a period that is not final."""
        if not 1 <= first <= PERIODS_PAGE_MAX:
            raise bad_input(f"first must be 1..{PERIODS_PAGE_MAX}")
        before = None if after is None else decode_cursor(after)
        current = board.period_at_timestamp(self._clock())
        finals = await self._standings.final_periods(board.id)
        for period, count in finals.items():
            self._final_counts[(board.id, period)] = count
        # A period frozen without scores is final but has none: not listed.
        candidates = {period for period, count in finals.items() if count > 0}
        candidates |= set(await self._standings.periods_with_events(board.id))
        candidates.add(current)  # its scores may all still be in a batcher
        ordered = sorted((p for p in candidates if before is None or p < before), reverse=True)
        page: list[PeriodSummary] = []
        index = 0
        while index < len(ordered) and len(page) < first:
            period = ordered[index]
            index += 1
            final = period in finals
            count = finals[period] if final else await live_count(board.id, period)
            if count == 0:
                continue
            start, end = period_span(board, period)
            page.append(
                PeriodSummary(
                    board=board.id,
                    period=period,
                    starts_at=_NEVER_STARTS_AT if start is None else _iso(start),
                    ends_at=None if end is None else _iso(end),
                    player_count=count,
                    final=final,
                )
            )
        # What is left are past periods: each final one has players, each other has events.
        has_next = index < len(ordered)
        return page, has_next
