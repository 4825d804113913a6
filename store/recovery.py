"""Rebuilding a period's live ranking from the history, exactly once across instances.

One instance claims the rebuild with an atomic SET NX (with expiry, so a crashed
claimer cannot block the others for ever); the others wait until the period is
marked loaded. The claimer checks again after winning the claim, because another
instance may have finished a rebuild between our check and our claim. `load`
replaces the ranking rather than adding to it, so even a rebuild repeated after an
expired claim cannot count an event twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from store.errors import RankingNotLoaded, StoreUnavailable
from store.history import ScoreHistory
from store.ranking import RankingStore

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Drift:
    """A player whose live total differs from the history's (None: absent on that side)."""

    username: str
    live: int | None
    history: int | None


_POLL_SECONDS = 0.05


class RankingRecovery:
    """Makes sure a board's period is loaded in the live store before it is used."""

    def __init__(
        self,
        ranking: RankingStore,
        history: ScoreHistory,
        *,
        claim_seconds: float,
        wait_seconds: float,
        settle_seconds: float,
    ) -> None:
        self._ranking = ranking
        self._history = history
        self._claim_seconds = claim_seconds
        self._wait_seconds = wait_seconds
        self._settle_seconds = settle_seconds
        # Concurrent requests of this instance share one recovery per period.
        self._in_flight: dict[tuple[str, str], asyncio.Task[None]] = {}
        self.rebuilds = 0
        """How many rebuilds this instance ran (the rest it waited for)."""

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

    async def rebuild(self, board: str, period: str) -> int:
        """Rebuild a period now, even when loaded (operator command); return players loaded."""
        deadline = time.monotonic() + self._wait_seconds
        while True:
            token = await self._ranking.claim_rebuild(board, period, self._claim_seconds)
            if token is not None:
                try:
                    return await self._load_from_history(board, period)
                finally:
                    await self._ranking.release_rebuild(board, period, token)
            if time.monotonic() > deadline:
                raise StoreUnavailable(f"another instance holds the rebuild of {board}/{period}")
            await asyncio.sleep(_POLL_SECONDS)

    async def reconcile(self, board: str, period: str) -> list[Drift]:
        """Compare the live ranking with the history and, when they differ, rebuild it.

        Meant for after a crash (SIGKILL loses the unflushed buffer: Redis has events MySQL
        never got) or a Redis failover that lost writes. Run it while the board is quiet:
        an event acknowledged but not yet flushed while it runs counts as drift.
        """
        history = dict(await self._history.totals(board, period))
        try:
            live = await self._ranking.totals(board, period)
        except RankingNotLoaded:
            live = {}
        drifts = [
            Drift(username, live.get(username), history.get(username))
            for username in sorted(history.keys() | live.keys())
            if live.get(username) != history.get(username)
        ]
        if drifts or not await self._ranking.is_loaded(board, period):
            await self.rebuild(board, period)
        return drifts

    async def _recover(self, board: str, period: str) -> None:
        deadline = time.monotonic() + self._wait_seconds
        while not await self._ranking.is_loaded(board, period):
            token = await self._ranking.claim_rebuild(board, period, self._claim_seconds)
            if token is not None:
                try:
                    if not await self._ranking.is_loaded(board, period):
                        await asyncio.sleep(self._settle_seconds)
                        await self._load_from_history(board, period)
                finally:
                    await self._ranking.release_rebuild(board, period, token)
                return
            if time.monotonic() > deadline:
                raise StoreUnavailable(
                    f"timed out waiting for another instance to rebuild {board}/{period}"
                )
            await asyncio.sleep(_POLL_SECONDS)

    async def _load_from_history(self, board: str, period: str) -> int:
        started = time.monotonic()
        totals = await self._history.totals(board, period)
        event_ids = await self._history.client_event_ids(board, period)
        await self._ranking.load(board, period, totals, event_ids)
        self.rebuilds += 1
        if totals:
            logger.info(
                "rebuilt %s/%s from the history: %d players in %.2f s",
                board,
                period,
                len(totals),
                time.monotonic() - started,
            )
        return len(totals)
