"""`CoalescedCalls`: concurrent calls of an all-or-nothing batch operation, merged into one.

Under load, many requests each apply a few increments at the same moment. One Redis
script call per request costs the client a connection checkout, a send, a read and a
reply parse, and Redis a script start; one script call for the requests that arrived
together costs that once. The merged call applies the calls' items in the order they
were submitted, exactly as if they had run one after the other, so every caller gets
the results its own call would have had (ranks at its turn, a repeated event id
counting once).

A merged call is all or nothing, so one caller's refusal (a period to rebuild, a total
out of range) would refuse the others' items too. Refusals listed in `retry_alone`
promise that nothing was applied: then each caller's items run again on their own, in
submission order, and get their own answer. Any other failure (a lost connection: the
call may or may not have run) reaches every caller of the merged call, as it would have
reached each of them alone; retrying could apply an increment twice.

Nothing waits to be merged: a call goes out at the next turn of the event loop (with
whatever else was submitted in the same turn) unless `max_in_flight` merged calls are
already out, in which case it joins the next one. At low load every call goes alone;
under load, calls merge as much as the load requires. A caller's items are never split.

A call may ask for `flagged`, the operation's richer variant (ranks in the outcomes, for
the increments): a merged call runs it when any of its calls asked, the others get the
extra detail they did not ask for.

May import: nothing of the project (it is generic over items and results).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")


class _Submission(Generic[ItemT, ResultT]):
    __slots__ = ("flag", "future", "items")

    def __init__(
        self, items: Sequence[ItemT], future: asyncio.Future[list[ResultT]], flag: bool
    ) -> None:
        self.items = items
        self.future = future
        self.flag = flag


class CoalescedCalls(Generic[ItemT, ResultT]):
    """Runs `operation` once for the calls submitted together (see module doc).

    `operation(items)` must return one result per item, in order, and apply all or none.
    `abandoned()` is the error for callers whose call was cancelled in flight (a shutdown):
    their items may or may not have been applied. `flagged` is the variant run for calls
    made with `flag` (module doc); without it, `flag` is ignored.
    """

    def __init__(
        self,
        operation: Callable[[list[ItemT]], Awaitable[list[ResultT]]],
        *,
        max_items: int,
        max_in_flight: int,
        retry_alone: tuple[type[BaseException], ...],
        abandoned: Callable[[], Exception],
        flagged: Callable[[list[ItemT]], Awaitable[list[ResultT]]] | None = None,
    ) -> None:
        if max_items < 1 or max_in_flight < 1:
            raise ValueError("max_items and max_in_flight must be at least 1")
        self._operation = operation
        self._flagged = flagged or operation
        self._max_items = max_items
        self._max_in_flight = max_in_flight
        self._retry_alone = retry_alone
        self._abandoned = abandoned
        self._pending: deque[_Submission[ItemT, ResultT]] = deque()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._scheduled = False

    async def __call__(self, items: Sequence[ItemT], *, flag: bool = False) -> list[ResultT]:
        """The results of `items`, applied in one call with whatever was submitted alongside
        (by `flagged` when this call or another of the merged ones has `flag`)."""
        loop = asyncio.get_running_loop()
        submission: _Submission[ItemT, ResultT] = _Submission(items, loop.create_future(), flag)
        self._pending.append(submission)
        self._schedule(loop)
        # The merged call runs in a task of its own: a caller that gives up (is
        # cancelled) does not cancel the others' increments.
        return await submission.future

    async def drain(self) -> None:
        """Wait until every call submitted so far has been answered."""
        while self._in_flight or self._pending:
            if self._in_flight:
                # wait(), not gather(): a drain that is itself cancelled must not cancel
                # the calls in flight (their callers would lose applied increments).
                await asyncio.wait(set(self._in_flight))
            else:
                await asyncio.sleep(0)

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        # At the next turn, so that every call submitted in this turn joins.
        if not self._scheduled and self._pending and len(self._in_flight) < self._max_in_flight:
            self._scheduled = True
            loop.call_soon(self._dispatch)

    def _dispatch(self) -> None:
        self._scheduled = False
        while self._pending and len(self._in_flight) < self._max_in_flight:
            batch = self._take()
            if not batch:
                continue
            task = asyncio.get_running_loop().create_task(self._run(batch))
            self._in_flight.add(task)
            task.add_done_callback(self._finished)

    def _take(self) -> list[_Submission[ItemT, ResultT]]:
        """The oldest submissions, up to `max_items` items (always at least one submission);
        those whose caller gave up are dropped before anything is sent for them."""
        batch: list[_Submission[ItemT, ResultT]] = []
        count = 0
        while self._pending:
            submission = self._pending[0]
            if submission.future.done():  # cancelled before it was sent
                self._pending.popleft()
                continue
            if batch and count + len(submission.items) > self._max_items:
                break
            self._pending.popleft()
            batch.append(submission)
            count += len(submission.items)
        return batch

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._schedule(asyncio.get_running_loop())

    async def _run(self, batch: list[_Submission[ItemT, ResultT]]) -> None:
        try:
            await self._run_batch(batch)
        finally:
            # This task was cancelled before it answered some callers (a shutdown): whether
            # their items were applied is unknown, and they must hear so, not wait forever.
            for submission in batch:
                if not submission.future.done():
                    submission.future.set_exception(self._abandoned())

    async def _run_batch(self, batch: list[_Submission[ItemT, ResultT]]) -> None:
        batch = [submission for submission in batch if not submission.future.done()]
        if len(batch) <= 1:
            for submission in batch:
                await self._run_alone(submission)
            return
        items = [item for submission in batch for item in submission.items]
        flagged = any(submission.flag for submission in batch)
        try:
            results = await (self._flagged if flagged else self._operation)(items)
        except self._retry_alone:
            # Nothing was applied: each call again on its own, in order, for its own answer.
            for submission in batch:
                await self._run_alone(submission)
            return
        except Exception as error:
            for submission in batch:
                _fail(submission, error)
            return
        at = 0
        for submission in batch:
            end = at + len(submission.items)
            if not submission.future.done():
                submission.future.set_result(results[at:end])
            at = end

    async def _run_alone(self, submission: _Submission[ItemT, ResultT]) -> None:
        if submission.future.done():
            return  # its caller gave up: nothing is sent for it
        try:
            operation = self._flagged if submission.flag else self._operation
            results = await operation(list(submission.items))
        except Exception as error:
            _fail(submission, error)
            return
        if not submission.future.done():
            submission.future.set_result(results)


def _fail(submission: _Submission[ItemT, ResultT], error: Exception) -> None:
    if not submission.future.done():
        submission.future.set_exception(error)
