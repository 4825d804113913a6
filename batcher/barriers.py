"""Barriers over the write buffer: which reservations a barrier must wait for.

A barrier (`WriteBatcher.flushed_through_now`) waits for every reservation taken before
it, since a reservation's events may be applied to the live ranking before they are
committed into the buffer. Reservations are counted per epoch (a barrier starts a new
one), so a barrier waits for the epochs up to its own to empty.

A reservation *parked* in a recovery (`WriteBatcher.parking`) applied nothing yet: the
rebuild fence's barrier skips it (waiting for it would wait for the rebuild that waits
for the fence). When it leaves the recovery it counts as taken in the current epoch.
"""

from __future__ import annotations

import asyncio
import contextvars
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from batcher.batcher import Reservation

HELD: contextvars.ContextVar[Reservation | None] = contextvars.ContextVar(
    "held reservation", default=None
)
"""The reservation whose block the current task is in (`WriteBatcher.parking`)."""


class Barriers:
    """Open and parked reservations per epoch, and the barriers waiting on them."""

    def __init__(self) -> None:
        self.epoch = 0
        self._open: dict[int, int] = {}
        self._parked: dict[int, int] = {}
        self._waiters: list[asyncio.Future[None]] = []

    def opened(self) -> int:
        """A reservation was taken: its epoch."""
        self._open[self.epoch] = self._open.get(self.epoch, 0) + 1
        return self.epoch

    def settled(self, epoch: int) -> None:
        """A reservation of `epoch` was committed or cancelled."""
        left = self._open[epoch] - 1
        if left:
            self._open[epoch] = left
        else:
            del self._open[epoch]
        # Woken even when others of the epoch stay open: a fence's barrier is done once
        # only parked ones are left (found by the state machine as a rebuild that waited
        # for ever on its fence, while the last unparked write of the epoch committed).
        self._wake()

    def park(self, epoch: int) -> None:
        """A reservation of `epoch` waits in a recovery."""
        self._parked[epoch] = self._parked.get(epoch, 0) + 1
        self._wake()

    def unpark(self, epoch: int) -> None:
        """A reservation of `epoch` left its recovery (or ended while in it)."""
        left = self._parked[epoch] - 1
        if left:
            self._parked[epoch] = left
        else:
            del self._parked[epoch]

    async def wait(self, *, skip_parked: bool) -> None:
        """Start a new epoch; return once no reservation of an earlier one is open (but
        parked ones, with `skip_parked`)."""
        epoch = self.epoch
        self.epoch += 1
        while self._open_through(epoch, skip_parked=skip_parked):
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter

    def _open_through(self, epoch: int, *, skip_parked: bool) -> bool:
        for open_epoch, count in self._open.items():
            if open_epoch > epoch:
                continue
            if not skip_parked or count > self._parked.get(open_epoch, 0):
                return True
        return False

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
