"""`Instances`: this process in the instance registry (store/instances.py).

- **Heartbeat.** Every `heartbeat_seconds` the instance refreshes its registration (it
  counts as alive until `timeout_seconds` after its last beat, on the Redis clock).
- **Passing a fence.** A beat's reply names the latest fence asked for; the instance takes
  a write-buffer barrier (`WriteBatcher.flushed_through_now`: every event it applied
  before learning the fence is in the history) and reports the fence passed. The barrier
  runs beside the heartbeat, so an instance whose history is down keeps beating (it is
  alive, its buffer is not lost) while the fence waits for it.
- **Fencing a rebuild** (`fence`, the recovery's wait before it reads the history): ask for
  a fence, pass it here at once, and wait until every live instance has passed it. After
  Redis lost its data the registry is new: the fence also waits until it is old enough for
  every live instance to have registered again (two beats), and for the instances this
  one saw alive before the loss to register again, or at most `timeout_seconds` (after
  that they are dead, and what they had not flushed is lost with them, as
  `LEADERBOARD_ACK=persisted` bounds).
- **A dead instance** (past its deadline without a clean `leave`): one survivor claims it
  atomically (`reap`) with the board periods it had declared dirty (declared before its
  first write to one, retired once flushed) and has each reconciled (`reconcile`:
  the period is unloaded, so writes wait, then rebuilt behind a fence).

Without a registry (the embedded store, one process) a fence is this instance's barrier
alone: there is nobody else to wait for, and nobody can die and leave the store behind.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol

from batcher import WriteBatcher
from resolvers.errors import unavailable
from store.aio import cancel_and_wait
from store.errors import StoreUnavailable
from store.instances import FenceState, InstanceRegistry

logger = logging.getLogger(__name__)

_FENCE_POLL_SECONDS = 0.05
_STOP_SECONDS = 5.0
_RETIRE_BEATS = 4
"""Dirty board periods idle this many beats are retired (once flushed)."""

Reconcile = Callable[[str, str], Awaitable[None]]
"""Put a board period's live ranking back to the history's truth (unload, fenced rebuild)."""


class Unloads(Protocol):
    """A ranking store that can drop a period's live ranking (the Redis one)."""

    async def unload(self, board: str, period: str) -> None:
        """Drop the period's ranking: the next use rebuilds it from the history."""
        ...


class Rebuilds(Protocol):
    """What brings an unloaded period back (`store.recovery.RankingRecovery`)."""

    async def ensure_loaded(self, board: str, period: str) -> None:
        """Return once the period is loaded."""
        ...


def unload_and_rebuild(ranking: Unloads, recovery: Rebuilds) -> Reconcile:
    """The reconcile of a dead instance's board periods: unload, then a fenced rebuild."""

    async def reconcile(board: str, period: str) -> None:
        # Unloaded first: writes wait for the rebuild instead of landing in a ranking it is
        # about to replace; the rebuild's fence then covers what they applied before.
        await ranking.unload(board, period)
        await recovery.ensure_loaded(board, period)

    return reconcile


class InstanceObserver(Protocol):
    """Told about fences and dead instances (for metrics)."""

    def fenced(self, seconds: float) -> None:
        """A rebuild's fence was passed by every live instance after `seconds`."""
        ...

    def reaped(self, periods: int) -> None:
        """This instance claimed a dead one and had `periods` board periods reconciled."""
        ...


class Instances:
    """Heartbeats, fences and reconciliation after dead instances (see module doc)."""

    def __init__(
        self,
        registry: InstanceRegistry | None,
        batcher: WriteBatcher | None,
        *,
        heartbeat_seconds: float = 0.5,
        timeout_seconds: float = 5.0,
        fence_wait_seconds: float = 30.0,
        observer: InstanceObserver | None = None,
        instance: str | None = None,
    ) -> None:
        self._registry = registry
        self._batcher = batcher
        self._beat_seconds = heartbeat_seconds
        self._timeout_seconds = timeout_seconds
        self._fence_wait_seconds = fence_wait_seconds
        self._observer = observer
        self.instance = instance or secrets.token_hex(8)
        self.reconcile: Reconcile | None = None
        """Set by the wiring once the recovery exists (it needs this fence first)."""
        self._passed = 0
        self._joined = False
        self._passing: asyncio.Task[None] | None = None
        self._seen_alive: frozenset[str] = frozenset()
        """Who was alive at the last beat the registry knew us: whom a fence after a
        Redis loss waits for."""
        self._tasks: list[asyncio.Task[None]] = []
        self._reaping: set[str] = set()
        # Board periods this instance declared dirty, with the generation of each.
        self._dirty: dict[tuple[str, str], int] = {}
        self._written: set[tuple[str, str]] = set()
        self._generation = 0
        self.reaped_periods = 0
        """Board periods this instance reconciled after dead instances (tests, logs)."""

    # Lifecycle

    async def start(self) -> None:
        """Register (one beat, so the others' fences wait for this instance from now on)
        and run the heartbeat."""
        if self._registry is None or self._batcher is None:
            return
        await self._beat()
        self._tasks = [
            asyncio.create_task(self._heartbeat_loop(), name="instance heartbeat"),
            asyncio.create_task(self._retire_loop(), name="instance dirty periods"),
        ]

    async def stop(self) -> None:
        """Stop beating and leave the registry (after the batcher drained: nothing of this
        instance is left to wait for or to reconcile)."""
        tasks, self._tasks = self._tasks, []
        if self._passing is not None:
            tasks.append(self._passing)
        await cancel_and_wait(tasks, timeout=_STOP_SECONDS, log=logger, what="instance tasks")
        if self._registry is None or self._batcher is None:
            return
        try:
            await self._registry.leave(self.instance)
        except StoreUnavailable as error:
            logger.warning("could not leave the instance registry: %s", error)

    # The write path: dirty board periods

    def undeclared(self, periods: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """Of the board periods a write touches, those to declare first (usually none);
        marks them all written since the last retirement pass."""
        if self._registry is None:
            return []
        written = self._written
        missing = []
        for key in periods:
            written.add(key)
            if key not in self._dirty:
                missing.append(key)
        return missing

    async def declared(self, periods: Iterable[tuple[str, str]]) -> None:
        """Declare the board periods a write touches that are not declared yet (the write
        path calls it after reserving: a retirement's barrier then waits for the write);
        UNAVAILABLE when the registry cannot be told (nothing was applied)."""
        missing = self.undeclared(periods)
        if missing:
            try:
                await self.declare(missing)
            except StoreUnavailable as error:
                raise unavailable(f"storage is unavailable; nothing was applied: {error}") from None

    async def declare(self, periods: list[tuple[str, str]]) -> None:
        """Declare board periods dirty in the registry before writing to them (a survivor
        reconciles them if this instance dies before they are flushed)."""
        if self._registry is None:
            return
        self._generation += 1
        generation = self._generation
        await self._registry.dirty(self.instance, periods, generation, declare=True)
        for key in periods:
            self._dirty[key] = max(self._dirty.get(key, 0), generation)

    async def _retire_clean(self) -> None:
        """Retire the dirty periods not written to since the last pass, once flushed."""
        assert self._registry is not None
        assert self._batcher is not None
        idle = [key for key in self._dirty if key not in self._written]
        self._written = set()
        if not idle:
            return
        generations = {key: self._dirty.pop(key) for key in idle}
        # Popped first: a write from now on declares again, with a newer generation that
        # this retirement cannot remove, whatever order the two reach Redis in. A write
        # that found it declared reserved before that (the write path reserves, then
        # checks), so the barrier waits for it, parked in a recovery or not.
        await self._batcher.flushed_through_now()
        await self._registry.dirty(self.instance, idle, max(generations.values()), declare=False)

    # Fences

    async def fence(self) -> None:
        """Return once every live instance has written to the history every event it
        applied before this call (`StoreUnavailable` after `fence_wait_seconds`)."""
        started = time.monotonic()
        if self._registry is None:
            if self._batcher is not None:
                await self._batcher.flushed_through_now(skip_parked=True)
            return
        state = await self._registry.fence()
        if self._batcher is not None:
            # Our own part at once, rather than at the next beat.
            await self._pass(state.fence)
        deadline = started + self._fence_wait_seconds
        while not self._complete(state):
            if time.monotonic() > deadline:
                raise StoreUnavailable(
                    f"the rebuild fence is still waiting for {len(state.waiting)} instance(s) "
                    f"after {self._fence_wait_seconds:g} s: {', '.join(state.waiting)}"
                )
            await asyncio.sleep(_FENCE_POLL_SECONDS)
            state = await self._registry.fence(state.fence)
        logger.info(
            "fence %d passed by %d live instance(s) in %.2f s",
            state.fence,
            len(state.live),
            time.monotonic() - started,
        )
        if self._observer is not None:
            self._observer.fenced(time.monotonic() - started)

    def _complete(self, state: FenceState) -> bool:
        if state.waiting:
            return False
        if state.age_ms >= self._timeout_seconds * 1000:
            return True
        # A young registry (Redis lost its data): every live instance registers again
        # within a beat or two; the ones seen alive before must have (or be dead).
        if state.age_ms < 2 * self._beat_seconds * 1000:
            return False
        return not self._seen_alive - set(state.live)

    async def _pass(self, fence: int) -> None:
        """Take a barrier, then report `fence` passed."""
        assert self._batcher is not None
        assert self._registry is not None
        await self._batcher.flushed_through_now(skip_parked=True)
        logger.debug("passed fence %d", fence)
        if fence > self._passed:
            self._passed = fence
            await self._beat()

    # Heartbeat

    async def _beat(self) -> None:
        assert self._registry is not None
        beat = await self._registry.heartbeat(self.instance, self._timeout_seconds, self._passed)
        if beat.known:
            self._seen_alive = frozenset(beat.live)
        elif self._joined and self._dirty:
            # Our registration (and our dirty periods) vanished: Redis lost its data, or we
            # were silent past the timeout and a survivor reaped us.
            reaped = beat.age_ms >= self._timeout_seconds * 1000
            task = asyncio.create_task(self._rejoin(reaped=reaped), name="instance rejoin")
            self._tasks.append(task)
        self._joined = True
        if beat.fence > self._passed and (self._passing is None or self._passing.done()):
            self._passing = asyncio.create_task(self._pass_quietly(beat.fence), name="fence")
        for dead in beat.dead:
            if dead != self.instance and dead not in self._reaping:
                self._reaping.add(dead)
                task = asyncio.create_task(self._reap(dead), name=f"reap {dead}")
                self._tasks.append(task)

    async def _rejoin(self, *, reaped: bool) -> None:
        """Declare our dirty periods again; when we were reaped, also reconcile them once
        our buffer is written (the survivor's rebuild did not wait for it)."""
        assert self._registry is not None
        assert self._batcher is not None
        periods = list(self._dirty)
        try:
            await self.declare(periods)
            if reaped:
                logger.warning("this instance was taken for dead: reconciling %d", len(periods))
                await self._batcher.flushed_through_now()
                for board, period in sorted(periods):
                    if self.reconcile is not None:
                        await self.reconcile(board, period)
        except StoreUnavailable as error:
            logger.error("rejoining the instance registry failed: %s", error)
        finally:
            current = asyncio.current_task()
            self._tasks = [task for task in self._tasks if task is not current]

    async def _pass_quietly(self, fence: int) -> None:
        try:
            await self._pass(fence)
        except StoreUnavailable as error:
            logger.warning("fence %d not passed yet: %s", fence, error)

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self._beat_seconds)
            try:
                await self._beat()
            except StoreUnavailable as error:
                logger.warning("instance heartbeat failed: %s", error)

    async def _retire_loop(self) -> None:
        # Its own task: the barrier waits for the history, the heartbeat must not.
        while True:
            await asyncio.sleep(_RETIRE_BEATS * self._beat_seconds)
            try:
                await self._retire_clean()
            except StoreUnavailable as error:
                logger.warning("dirty board periods not retired: %s", error)

    async def _reap(self, dead: str) -> None:
        """Claim a dead instance; reconcile the board periods it had declared dirty."""
        assert self._registry is not None
        try:
            periods = await self._registry.reap(dead)
            if periods is None:
                return  # alive after all, or another survivor claimed it
            logger.warning(
                "instance %s died without leaving: reconciling %d board period(s)",
                dead,
                len(periods),
            )
            for board, period in sorted(periods):
                if self.reconcile is not None:
                    await self.reconcile(board, period)
            self.reaped_periods += len(periods)
            if self._observer is not None:
                self._observer.reaped(len(periods))
        except StoreUnavailable as error:
            # Not reaped, or reaped and not reconciled: logged for `leaderboard reconcile`.
            logger.error("reconciling after dead instance %s failed: %s", dead, error)
        finally:
            self._reaping.discard(dead)
            current = asyncio.current_task()
            self._tasks = [task for task in self._tasks if task is not current]
