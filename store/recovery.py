"""Rebuilding a period's live ranking from the history, exactly once across instances.

One instance claims the rebuild with an atomic SET NX (with expiry, so a crashed
claimer cannot block the others for ever); the others wait until the period is
marked loaded. The claimer checks again after winning the claim, because another
instance may have finished a rebuild between our check and our claim. `load`
replaces the ranking rather than adding to it, so even a rebuild repeated after an
expired claim cannot count an event twice. `_under_claim` is the one claim-and-poll loop.

Why not redis-py's `Lock` for the claim: it is SET NX PX plus a compare-and-delete
script, the same two steps `claim_rebuild` / `release_rebuild` take, but (1) recovery
runs on every ranking backend, the embedded one included, so it depends on the
`RebuildTarget` protocol and no Redis type; (2) the claim key belongs to the Redis
store's key layout (prefix, cluster hash tag), next to the period it guards; (3) its
blocking `acquire` polls for the lock only, while a waiter here must stop as soon as the
period is *loaded* (checked between polls), not queue for a claim it no longer needs;
(4) its `release` raises when the claim expired, where a late release must be a no-op.
A Redis backend may still implement `claim_rebuild` with it; the semantics above are
what the contract suite checks.

Before it reads the history, every load waits for the *fence* it was given
(resolvers/instances.py): every live instance has written to the history the events it
applied before the fence was asked for, so events acknowledged before Redis lost its data
and still in some instance's buffer are read too (docs/architecture.md, "Recovery").
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from store.board_model import replay
from store.boards import Board, board_index
from store.errors import RankingNotLoaded, StoreUnavailable
from store.event_window import DEFAULT_EVENT_ID_WINDOW
from store.ports import HistoryReads, RankingLoads, RebuildTarget

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class Drift:
    """A player whose live total differs from the history's (None: absent on that side)."""

    username: str
    live: int | None
    history: int | None


_POLL_SECONDS = 0.05

Fence = Callable[[], Awaitable[None]]
"""Returns once every live instance's events applied before the call are in the history."""

RepairProgress = Callable[[str, int, int], None]
"""Told as an operator repair advances: what it does now, steps done, steps in all."""

_REBUILD_STEPS = 4


class RebuildObserver(Protocol):
    """Told about every rebuild this instance runs (for metrics)."""

    def rebuilt(self, players: int, seconds: float) -> None:
        """A rebuild loaded `players` players in `seconds`."""
        ...

    def rebuild_failed(self, seconds: float) -> None:
        """A rebuild failed after `seconds` (a store was unavailable)."""
        ...


def _no_progress(what: str, done: int, total: int) -> None:
    pass


class RankingRecovery:
    """Makes sure a board's period is loaded in the live store before it is used."""

    def __init__(
        self,
        ranking: RebuildTarget,
        history: HistoryReads,
        *,
        claim_seconds: float,
        wait_seconds: float,
        fence: Fence | None = None,
        observer: RebuildObserver | None = None,
        boards: Sequence[Board] = (),
        loads: RankingLoads | None = None,
        event_id_window_seconds: float = DEFAULT_EVENT_ID_WINDOW.total_seconds(),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._ranking = ranking
        # The load: through the top cache when there is one, which drops the period's
        # snapshots as it returns (`ranking` otherwise).
        self._loads: RankingLoads = ranking if loads is None else loads
        # A rebuild restores only the client event ids still inside the idempotency window.
        self._event_id_window = event_id_window_seconds
        self._clock = clock
        # Live (a registry's index): how each board's history folds into kept scores.
        self._boards = board_index(boards)
        self._history = history
        self._claim_seconds = claim_seconds
        self._wait_seconds = wait_seconds
        self._fence = fence
        self._observer = observer
        # Concurrent requests of this instance share one recovery per period.
        self._in_flight: dict[tuple[str, str], asyncio.Task[None]] = {}

    async def ensure_loaded(self, board: str, period: str) -> None:
        """Return once the period is loaded: rebuilt here, or by another instance."""
        key = (board, period)
        task = self._in_flight.get(key)
        if task is None:
            task = asyncio.create_task(
                self._recover(board, period), name=f"recover {board}/{period}"
            )
            self._in_flight[key] = task
            task.add_done_callback(lambda _: self._in_flight.pop(key, None))
        # Shielded: one cancelled request must not cancel the recovery the others wait for.
        await asyncio.shield(task)

    async def rebuild(
        self, board: str, period: str, progress: RepairProgress = _no_progress
    ) -> int:
        """Rebuild a period now, even when loaded (operator command); return players loaded."""
        progress("claiming the rebuild", 0, _REBUILD_STEPS)
        players = await self._under_claim(
            board,
            period,
            lambda: self._load_from_history(board, period, progress),
            until_loaded=False,
        )
        assert players is not None  # without `until_loaded` only the work returns
        return players

    async def reconcile(
        self, board: str, period: str, progress: RepairProgress = _no_progress
    ) -> list[Drift]:
        """Compare the live ranking with the history and, when they differ, rebuild it.

        Meant for after a crash (SIGKILL loses the unflushed buffer: Redis has events MySQL
        never got) or a Redis failover that lost writes. Run it while the board is quiet:
        an event acknowledged but not yet flushed while it runs counts as drift.
        """
        progress("reading the history", 0, 2)
        history = dict((await self._standings(board, period))[0])
        progress("reading the live ranking", 1, 2)
        try:
            live = await self._ranking.totals(board, period)
        except RankingNotLoaded:
            live = {}
        drifts = [
            Drift(username=username, live=live.get(username), history=history.get(username))
            for username in sorted(history.keys() | live.keys())
            if live.get(username) != history.get(username)
        ]
        if drifts or not await self._ranking.is_loaded(board, period):
            # The rebuild's steps follow the two reads above.
            await self.rebuild(
                board,
                period,
                lambda what, done, total: progress(what, 2 + done, 2 + total),
            )
        else:
            progress("in sync", 2, 2)
        return drifts

    async def _recover(self, board: str, period: str) -> None:
        async def rebuild_unless_loaded() -> int:
            # Another instance may have finished between our check and our claim.
            if await self._ranking.is_loaded(board, period):
                return 0
            return await self._load_from_history(board, period)

        await self._under_claim(board, period, rebuild_unless_loaded, until_loaded=True)

    async def _under_claim(
        self,
        board: str,
        period: str,
        work: Callable[[], Awaitable[T]],
        *,
        until_loaded: bool,
    ) -> T | None:
        """Run `work` holding the period's rebuild claim, polling while another instance holds it.

        With `until_loaded`, stop (None) as soon as the period is loaded, whoever loaded it.
        Raises `StoreUnavailable` when the claim stays taken for `wait_seconds`.
        """
        deadline = time.monotonic() + self._wait_seconds
        while not (until_loaded and await self._ranking.is_loaded(board, period)):
            token = await self._ranking.claim_rebuild(board, period, self._claim_seconds)
            if token is not None:
                try:
                    return await work()
                finally:
                    await self._ranking.release_rebuild(board, period, token)
            if time.monotonic() > deadline:
                raise StoreUnavailable(
                    f"timed out waiting for another instance's rebuild of {board}/{period}"
                )
            await asyncio.sleep(_POLL_SECONDS)
        return None

    async def _load_from_history(
        self, board: str, period: str, progress: RepairProgress = _no_progress
    ) -> int:
        started = time.monotonic()
        try:
            if self._fence is not None:
                progress("waiting for the instances' buffers (fence)", 1, _REBUILD_STEPS)
                await self._fence()
            progress("reading the history", 1, _REBUILD_STEPS)
            totals, instants, clock = await self._standings(board, period)
            progress("reading the event ids", 2, _REBUILD_STEPS)
            # The buckets a live store still checks: the current one and the one before.
            window_ms = max(1, int(self._event_id_window * 1000))
            since_life = int(self._clock() * 1000) // window_ms - 1
            client_events = await self._history.client_events(board, period, since_life=since_life)
            # Each writer's last sequence (idempotency per writer): every one of the period,
            # as the live store keeps them (no window).
            writers = await self._history.writers(board, period)
            progress(f"loading {len(totals)} players", 3, _REBUILD_STEPS)
            await self._loads.load(
                board,
                period,
                totals,
                client_events,
                instants=instants,
                clock=clock,
                writers=writers,
            )
        except StoreUnavailable:
            if self._observer is not None:
                self._observer.rebuild_failed(time.monotonic() - started)
            raise
        if self._observer is not None:
            self._observer.rebuilt(len(totals), time.monotonic() - started)
        progress(f"{len(totals)} players loaded", 4, _REBUILD_STEPS)
        if totals:
            logger.info(
                "rebuilt %s/%s from the history: %d players in %.2f s",
                board,
                period,
                len(totals),
                time.monotonic() - started,
            )
        return len(totals)

    async def fold(
        self, board: str, period: str
    ) -> tuple[list[tuple[str, int]], dict[str, int] | None]:
        """Each player's kept score in the period from the history, as a rebuild loads it
        (removals and bans honoured), and when each reached it on boards that keep instants
        (None on the others): what a final period's standings are frozen from."""
        totals, instants, _ = await self._standings(board, period)
        return totals, instants

    async def _standings(
        self, board: str, period: str
    ) -> tuple[list[tuple[str, int]], dict[str, int] | None, int | None]:
        """Each player's kept score in the period from the history, and on boards that keep
        instants when each reached it and the period's last instant (docs/boards.md,
        "Rebuild"): INCREMENT boards sum, the others replay each player's writes in the
        order they were applied (`board_model.replay`)."""
        config = self._boards.get(board)
        if config is None or not config.keeps_instants:
            return await self._history.totals(board, period), None, None
        writes: dict[str, list[tuple[int, int | None]]] = {}
        clock: int | None = None
        for username, instant, value in await self._history.writes(board, period):
            writes.setdefault(username, []).append((instant, value))
            clock = instant if clock is None else max(clock, instant)
        totals: list[tuple[str, int]] = []
        instants: dict[str, int] = {}
        for username, applied in writes.items():
            kept = replay(config.update_rule, config.sort_order, applied)
            if kept is not None:
                totals.append((username, kept[0]))
                instants[username] = kept[1]
        return totals, instants, clock
