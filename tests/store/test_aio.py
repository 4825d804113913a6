"""The shared asyncio helpers of `store.aio`: resubscribing consumer, bounded cancel, closing."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest

from store.aio import cancel_and_wait, cancel_until_done, close_iterator, consume_resubscribing

pytestmark = pytest.mark.unit

log = logging.getLogger("tests.aio")


class Feeds:
    """Subscriptions scripted one by one: items to yield, then end, fail or stay open."""

    def __init__(self, *scripts: tuple[list[int], str]) -> None:
        self.scripts = list(scripts)
        self.opened = 0
        self.closed = 0

    def subscribe(self) -> AsyncIterator[int]:
        """The next scripted subscription."""
        self.opened += 1
        return self._run(*self.scripts.pop(0))

    async def _run(self, items: list[int], then: str) -> AsyncIterator[int]:
        try:
            for item in items:
                yield item
            if then == "fail":
                raise ConnectionError("feed broke")
            if then == "hang":
                await asyncio.Event().wait()
        finally:
            self.closed += 1


async def test_a_failed_feed_is_resubscribed_and_each_gap_reported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    feeds = Feeds(([1, 2], "fail"), ([3], "end"))
    seen: list[int] = []
    events: list[str] = []
    await consume_resubscribing(
        feeds.subscribe,
        seen.append,
        running=lambda: True,
        log=log,
        what="test feed",
        restart_backoff=0.001,
        failure_level=logging.ERROR,
        resubscribe_at_end=False,
        unsubscribed=lambda: events.append("unsubscribed"),
        resubscribing=lambda: events.append("resubscribing"),
    )
    assert seen == [1, 2, 3]
    assert feeds.opened == feeds.closed == 2
    assert events == ["unsubscribed", "resubscribing", "unsubscribed"]
    failures = [record for record in caplog.records if record.levelno == logging.ERROR]
    assert len(failures) == 1
    assert "test feed failed; resubscribing" in failures[0].getMessage()
    assert failures[0].exc_info is not None


async def test_a_feed_that_ends_is_resubscribed_while_running() -> None:
    feeds = Feeds(([1], "end"), ([2], "end"), ([3], "hang"))
    seen: list[int] = []
    third = asyncio.Event()

    def handle(item: int) -> None:
        seen.append(item)
        if len(seen) == 3:
            third.set()

    task = asyncio.create_task(
        consume_resubscribing(
            feeds.subscribe, handle, running=lambda: True, log=log, what="t", restart_backoff=0
        )
    )
    await asyncio.wait_for(third.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == [1, 2, 3]
    assert feeds.opened == feeds.closed == 3


async def test_nothing_is_subscribed_once_not_running() -> None:
    feeds = Feeds(([1], "fail"), ([2], "end"))
    running = [True]

    def handle(item: int) -> None:
        running[0] = False

    await consume_resubscribing(
        feeds.subscribe, handle, running=lambda: running[0], log=log, what="t", restart_backoff=0
    )
    assert feeds.opened == 1


async def test_the_backoff_doubles_and_resets_after_an_item(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    feeds = Feeds(([], "fail"), ([], "fail"), ([1], "fail"), ([], "end"))
    sleeps: list[float] = []
    real_sleep = asyncio.sleep

    async def record(seconds: float) -> None:
        sleeps.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", record)
    await consume_resubscribing(
        feeds.subscribe,
        lambda item: None,
        running=lambda: True,
        log=log,
        what="t",
        restart_backoff=0.5,
        resubscribe_at_end=False,
    )
    assert sleeps == [0.5, 1.0, 0.5]


async def test_cancel_and_wait_is_bounded(caplog: pytest.LogCaptureFixture) -> None:
    release = asyncio.Event()

    async def stubborn() -> None:
        while not release.is_set():
            try:
                await release.wait()
            except asyncio.CancelledError:
                continue  # swallows the cancellation, as a misbehaving driver may

    async def polite() -> None:
        await asyncio.Event().wait()

    tasks = [asyncio.create_task(stubborn()), asyncio.create_task(polite())]
    await asyncio.sleep(0)
    await cancel_and_wait(tasks, timeout=0.05, log=log, what="test tasks")
    assert tasks[1].cancelled()
    assert not tasks[0].done()
    assert "test tasks: 1 tasks did not stop in time" in caplog.text
    release.set()
    await tasks[0]


async def test_close_iterator_closes_generators_and_ignores_the_rest() -> None:
    closed: list[bool] = []

    async def generator() -> AsyncIterator[int]:
        try:
            yield 1
        finally:
            closed.append(True)

    iterator = generator()
    assert await anext(iterator) == 1
    await close_iterator(iterator)
    assert closed == [True]
    await close_iterator(None)
    await close_iterator(Plain())  # no aclose: nothing to do


class Plain:
    """An async iterator that is not a generator (nothing to close)."""

    def __aiter__(self) -> Plain:
        return self

    async def __anext__(self) -> int:
        raise StopAsyncIteration


async def test_cancel_until_done_ends_a_loop_that_swallowed_a_cancellation() -> None:
    swallowed = 0

    async def listener() -> None:
        # Like redis-py connecting a subscription: the first cancellation is lost.
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                if swallowed:
                    raise
                swallowed += 1

    task = asyncio.create_task(listener())
    await asyncio.sleep(0)
    await cancel_until_done([task])
    assert task.cancelled()
    assert swallowed == 1


async def test_cancel_until_done_raises_what_a_task_failed_with() -> None:
    async def failing() -> None:
        raise RuntimeError("broken")

    task = asyncio.create_task(failing())
    await asyncio.wait({task})
    with pytest.raises(RuntimeError, match="broken"):
        await cancel_until_done([task])
