"""`WriteBatcher` against real histories: the shared MariaDB, SQLite and a private MariaDB.

A thin wrapper around the real history counts and records append calls; only the
small retry/ordering unit test at the end uses a fake history.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import pytest

from batcher import WriteBatcher, WriteRefused
from store.errors import StoreUnavailable
from store.models import ScoreEvent
from store.ports import ScoreHistory
from store.sql import SqlScoreHistory
from tests.support.history_database import query_history
from tests.support.private_servers import PrivateMariaDB
from tests.support.service_process import free_port
from tests.support.shared_services import mysql_url

pytestmark = pytest.mark.integration

BOARD = "global"
PERIOD = "2026-11"


class RecordingHistory:
    """The real history, with every append call recorded (event ids, outcome, time)."""

    def __init__(self, inner: ScoreHistory) -> None:
        self.inner = inner
        self.calls: list[tuple[float, list[str], bool]] = []
        self.gate: asyncio.Event | None = None
        self.entered = 0

    @property
    def written(self) -> list[list[str]]:
        """Event ids of each successful append, in order."""
        return [ids for _, ids, ok in self.calls if ok]

    @property
    def failures(self) -> int:
        """How many appends failed."""
        return sum(1 for _, _, ok in self.calls if not ok)

    async def append(self, events: Sequence[ScoreEvent]) -> None:
        self.entered += 1
        if self.gate is not None:
            await self.gate.wait()
        ids = [event.event_id for event in events]
        try:
            await self.inner.append(events)
        except BaseException:
            self.calls.append((time.monotonic(), ids, False))
            raise
        self.calls.append((time.monotonic(), ids, True))

    async def connect(self) -> None:
        await self.inner.connect()

    async def close(self) -> None:
        await self.inner.close()

    async def migrate(self) -> None:
        await self.inner.migrate()

    async def totals(self, board: str, period: str) -> list[tuple[str, int]]:
        return await self.inner.totals(board, period)

    async def client_events(
        self, board: str, period: str, *, since_life: int = 0
    ) -> list[tuple[str, str, int]]:
        return await self.inner.client_events(board, period, since_life=since_life)

    async def writers(self, board: str, period: str) -> list[tuple[str, int]]:
        return await self.inner.writers(board, period)

    async def ping(self) -> None:
        await self.inner.ping()


async def wait_for(
    condition: Callable[[], bool | Awaitable[bool]], what: str, timeout: float = 10.0
) -> None:
    """Poll `condition` every 10 ms until it holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.01)


async def row_count(url: str) -> int:
    """Rows in the history's score_events table, counted behind its back."""
    ((count,),) = await query_history(url, "SELECT COUNT(*) FROM score_events")
    return int(str(count))


def events(first: int, count: int, username: str = "ann") -> list[ScoreEvent]:
    """`count` events with ids e<first>.., one point each."""
    return [
        ScoreEvent(
            board=BOARD,
            period=PERIOD,
            username=username,
            delta=1,
            event_id=f"e{number}",
            client_event_id=False,
            created_at_ms=1_790_000_000_000,
        )
        for number in range(first, first + count)
    ]


def ids(first: int, count: int) -> list[str]:
    """The ids `events(first, count)` carries."""
    return [f"e{number}" for number in range(first, first + count)]


def commit(batcher: WriteBatcher, batch: list[ScoreEvent]) -> asyncio.Future[None]:
    """Reserve room for a batch and commit it at once."""
    with batcher.reserve(len(batch)) as reservation:
        return reservation.commit(batch)


async def open_history(url: str) -> RecordingHistory:
    """A connected, migrated real history, wrapped to record appends."""
    history = SqlScoreHistory(url, timeout=5)
    await history.connect()
    await history.migrate()
    return RecordingHistory(history)


@pytest.fixture
async def history(history_url: str) -> AsyncIterator[RecordingHistory]:
    """The real history on each backend, recorded."""
    recorded = await open_history(history_url)
    yield recorded
    await recorded.close()


@pytest.fixture
async def sqlite_history(sqlite_database_url: str) -> AsyncIterator[RecordingHistory]:
    """The real SQLite history, recorded (for tests that need only one backend)."""
    recorded = await open_history(sqlite_database_url)
    yield recorded
    await recorded.close()


async def test_flushes_by_size_with_one_append_per_flush(
    history: RecordingHistory, history_url: str
) -> None:
    batcher = WriteBatcher(history, flush_interval=60, flush_max_events=100)
    await batcher.start()
    futures = [commit(batcher, events(start, 50)) for start in range(0, 250, 50)]
    await wait_for(lambda: len(history.written) == 2, "two full flushes")
    assert history.written == [ids(0, 100), ids(100, 100)]
    assert batcher.depth == 50
    assert await row_count(history_url) == 200
    assert [future.done() for future in futures] == [True, True, True, True, False]
    assert await batcher.close(5) == 0
    assert history.written == [ids(0, 100), ids(100, 100), ids(200, 50)]
    assert history.calls == [(at, batch, True) for at, batch, _ in history.calls]
    assert await row_count(history_url) == 250
    assert await history.totals(BOARD, PERIOD) == [("ann", 250)]


async def test_a_flusher_behind_catches_up_with_bigger_statements(
    history: RecordingHistory, history_url: str
) -> None:
    """While the history is slow, the backlog goes in statements of up to the catch-up
    size (each still at least one trigger's worth), in order, each event once."""
    batcher = WriteBatcher(
        history, flush_interval=60, flush_max_events=100, flush_catch_up_events=500
    )
    history.gate = asyncio.Event()
    await batcher.start()
    first = commit(batcher, events(0, 100))
    await wait_for(lambda: history.entered == 1, "the first flush to start")
    backlog = [commit(batcher, events(start, 100)) for start in range(100, 1300, 100)]
    history.gate.set()
    await wait_for(lambda: batcher.depth == 0, "the backlog to be written")
    assert history.written == [ids(0, 100), ids(100, 500), ids(600, 500), ids(1100, 200)]
    assert first.done()
    assert all(future.done() for future in backlog)
    assert await row_count(history_url) == 1300
    assert await batcher.close(5) == 0


async def test_a_catch_up_size_below_a_flush_writes_a_flush(
    sqlite_history: RecordingHistory,
) -> None:
    batcher = WriteBatcher(
        sqlite_history, flush_interval=60, flush_max_events=100, flush_catch_up_events=10
    )
    await batcher.start()
    commit(batcher, events(0, 250))
    await wait_for(lambda: len(sqlite_history.written) == 2, "two full flushes")
    assert sqlite_history.written == [ids(0, 100), ids(100, 100)]
    assert await batcher.close(5) == 0


async def test_flushes_by_interval(sqlite_history: RecordingHistory) -> None:
    interval = 0.3
    batcher = WriteBatcher(sqlite_history, flush_interval=interval, flush_max_events=500)
    await batcher.start()
    try:
        committed = time.monotonic()
        commit(batcher, events(0, 3))
        await asyncio.sleep(0.05)
        commit(batcher, events(3, 2))  # joins the pending batch: the oldest event sets the time
        await wait_for(lambda: len(sqlite_history.calls) == 1, "a flush after the interval")
        waited = sqlite_history.calls[0][0] - committed
        assert interval * 0.95 <= waited < interval + 1.0, waited
        assert sqlite_history.written == [ids(0, 5)]
        assert batcher.depth == 0
    finally:
        await batcher.close(5)


async def test_full_buffer_refuses_reservations(sqlite_history: RecordingHistory) -> None:
    batcher = WriteBatcher(sqlite_history, flush_max_events=5, max_buffered_events=10)
    first = batcher.reserve(6)
    with pytest.raises(WriteRefused) as refused:
        batcher.reserve(5)
    assert refused.value.reason == "buffer full"
    first.commit(events(0, 6))
    assert batcher.depth == 6
    with pytest.raises(WriteRefused, match="buffer full"):
        batcher.reserve(5)
    batcher.reserve(4).commit(events(6, 4))
    assert batcher.depth == 10
    with pytest.raises(WriteRefused, match="buffer full"):
        batcher.reserve(1)
    await batcher.start()  # not started until now: nothing was written
    await wait_for(lambda: batcher.depth == 0, "the buffer to drain")
    batcher.reserve(10).cancel()
    assert await batcher.close(5) == 0
    assert sqlite_history.written == [ids(0, 5), ids(5, 5)]


async def test_cancelled_reservation_frees_room(sqlite_history: RecordingHistory) -> None:
    batcher = WriteBatcher(sqlite_history, flush_max_events=5, max_buffered_events=10)
    with batcher.reserve(10), pytest.raises(WriteRefused, match="buffer full"):
        batcher.reserve(1)
    assert batcher.reserved == 0
    with pytest.raises(RuntimeError, match="increment failed"), batcher.reserve(10):
        raise RuntimeError("increment failed")
    assert batcher.reserved == 0
    # Committing fewer events than reserved frees the rest.
    with batcher.reserve(10) as reservation:
        reservation.commit(events(0, 3))
    assert (batcher.depth, batcher.reserved) == (3, 0)
    batcher.reserve(7).cancel()
    with pytest.raises(WriteRefused, match="buffer full"):
        batcher.reserve(8)
    with pytest.raises(ValueError, match="4 events"), batcher.reserve(3) as reservation:
        reservation.commit(events(3, 4))
    assert await batcher.close(5) == 0
    assert sqlite_history.written == [ids(0, 3)]


async def test_close_drains_everything(history: RecordingHistory, history_url: str) -> None:
    batcher = WriteBatcher(history, flush_interval=60, flush_max_events=100)
    await batcher.start()
    futures = [commit(batcher, events(start, 1)) for start in range(7)]
    futures += [commit(batcher, events(start, 123)) for start in range(7, 991, 123)]
    late = batcher.reserve(50)  # open while closing: may still commit
    closing = asyncio.create_task(batcher.close(10))
    await asyncio.sleep(0.05)
    with pytest.raises(WriteRefused) as refused:
        batcher.reserve(1)
    assert refused.value.reason == "closing"
    futures.append(late.commit(events(991, 50)))
    assert await closing == 0
    assert await row_count(history_url) == 1041
    assert all(future.done() and future.exception() is None for future in futures)
    assert all(len(batch) <= 100 for batch in history.written)
    assert [event_id for batch in history.written for event_id in batch] == ids(0, 1041)
    assert batcher.depth == 0
    assert await batcher.close(1) == 0


async def test_a_commit_split_across_flushes_resolves_with_its_last_event(
    sqlite_history: RecordingHistory,
) -> None:
    batcher = WriteBatcher(sqlite_history, flush_interval=60, flush_max_events=100)
    await batcher.start()
    first, second = commit(batcher, events(0, 60)), commit(batcher, events(60, 150))
    await wait_for(lambda: len(sqlite_history.written) == 2, "two full flushes")
    assert sqlite_history.written == [ids(0, 100), ids(100, 100)]
    assert batcher.depth == 10
    await asyncio.sleep(0)
    assert first.done()
    assert first.exception() is None
    assert not second.done()  # 10 of its events are still buffered
    assert await batcher.close(5) == 0
    assert sqlite_history.written[-1] == ids(200, 10)
    assert second.done()
    assert second.exception() is None


async def test_commit_future_resolves_once_rows_are_in_mysql(mysql_database_url: str) -> None:
    history = await open_history(mysql_database_url)
    history.gate = asyncio.Event()
    batcher = WriteBatcher(history, flush_interval=0.01)
    await batcher.start()
    try:
        persisted = commit(batcher, events(0, 10))
        await wait_for(lambda: history.entered == 1, "the flush to begin")
        await asyncio.sleep(0.05)
        assert not persisted.done()
        assert await row_count(mysql_database_url) == 0
        history.gate.set()
        await asyncio.wait_for(persisted, 5)
        assert await row_count(mysql_database_url) == 10
    finally:
        history.gate.set()
        await batcher.close(5)
        await history.close()


@pytest.mark.parametrize("outage", ["stop", "kill"])
async def test_history_outage_refuses_writes_keeps_events_and_recovers(
    private_mariadb: PrivateMariaDB, outage: str
) -> None:
    url = await private_mariadb.create_database("lb")
    history = await open_history(url)
    batcher = WriteBatcher(
        history,
        flush_interval=0.02,
        flush_max_events=100,
        max_buffered_events=1000,
        retry_initial=0.02,
        retry_max=0.1,
    )
    await batcher.start()
    try:
        await asyncio.wait_for(commit(batcher, events(0, 10)), 5)

        if outage == "stop":
            await private_mariadb.stop()
        else:
            await private_mariadb.kill()
        during_outage = [commit(batcher, events(10, 20)), commit(batcher, events(30, 5))]
        await wait_for(lambda: not batcher.healthy, "the failed flush")
        with pytest.raises(WriteRefused) as refused:
            batcher.reserve(1)
        assert refused.value.reason == "history unavailable"
        failures = history.failures
        await wait_for(lambda: history.failures >= failures + 3, "three more retries")
        assert batcher.depth == 25
        assert not any(future.done() for future in during_outage)
        with pytest.raises(WriteRefused, match="history unavailable"):
            batcher.reserve(1)

        await private_mariadb.start()  # same datadir, same port; the batcher is not restarted
        await asyncio.wait_for(asyncio.gather(*during_outage), 10)
        assert batcher.healthy
        assert batcher.depth == 0
        assert await row_count(url) == 35
        written = Counter(event_id for batch in history.written for event_id in batch)
        assert written == Counter(ids(0, 35))  # each event written by exactly one append
        await asyncio.wait_for(commit(batcher, events(35, 5)), 5)
        assert await row_count(url) == 40
    finally:
        await batcher.close(5)
        await history.close()


async def test_close_timeout_returns_lost_events_and_futures_never_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A real history whose database does not answer (nothing listens on the port).
    history = SqlScoreHistory(mysql_url("nothing", port=free_port()), timeout=2)
    with pytest.raises(StoreUnavailable):
        await history.connect()
    batcher = WriteBatcher(history, flush_interval=0.01, retry_initial=0.01, retry_max=0.05)
    await batcher.start()
    watched = commit(batcher, events(0, 5))
    commit(batcher, events(5, 2))  # ignored, as in the default acknowledgement mode
    await wait_for(lambda: not batcher.healthy, "the failed flush")
    with caplog.at_level(logging.ERROR):
        assert list(await asyncio.gather(batcher.close(0.2), batcher.close(0.2))) == [7, 7]
        assert isinstance(watched.exception(), StoreUnavailable)
        del watched
        gc.collect()
        await asyncio.sleep(0)
    messages = [record.getMessage() for record in caplog.records]
    assert any("7 events NOT written" in message for message in messages), messages
    assert not [message for message in messages if "never retrieved" in message]
    with pytest.raises(WriteRefused, match="closing"):
        batcher.reserve(1)


class FlakyHistory:
    """A fake history failing its first `failures` appends (timing and ordering only)."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.attempts: list[tuple[float, list[str]]] = []
        self.stored: list[str] = []

    async def append(self, events: Sequence[ScoreEvent]) -> None:
        self.attempts.append((time.monotonic(), [event.event_id for event in events]))
        if len(self.attempts) <= self.failures:
            raise StoreUnavailable("down")
        self.stored += [event.event_id for event in events]


async def test_retries_keep_order_with_exponential_backoff() -> None:
    flaky = FlakyHistory(failures=4)
    reported: list[tuple[str, int]] = []

    class Report:
        def flushed(self, events: int, seconds: float) -> None:
            reported.append(("ok", events))

        def flush_failed(self, events: int, seconds: float) -> None:
            reported.append(("failed", events))

    batcher = WriteBatcher(
        flaky,
        flush_interval=0.01,
        flush_max_events=3,
        retry_initial=0.04,
        retry_max=0.1,
        observer=Report(),
    )
    commit(batcher, events(0, 5))
    await batcher.start()
    await wait_for(lambda: batcher.depth == 0, "recovery")
    assert await batcher.close(1) == 0
    assert [batch for _, batch in flaky.attempts] == [ids(0, 3)] * 5 + [ids(3, 2)]
    assert flaky.stored == ids(0, 5)
    times = [at for at, _ in flaky.attempts]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    for gap, backoff in zip(gaps, [0.04, 0.08, 0.1, 0.1, 0.0], strict=True):
        assert backoff * 0.9 <= gap < backoff + 0.5, gaps
    assert reported == [("failed", 3)] * 4 + [("ok", 3), ("ok", 2)]


async def test_after_a_failure_the_retry_takes_a_normal_flush_not_a_catch_up_one() -> None:
    flaky = FlakyHistory(failures=1)
    batcher = WriteBatcher(
        flaky,
        flush_interval=0.01,
        flush_max_events=3,
        flush_catch_up_events=9,
        retry_initial=0.01,
        retry_max=0.02,
    )
    commit(batcher, events(0, 12))
    await batcher.start()
    await wait_for(lambda: batcher.depth == 0, "recovery")
    assert await batcher.close(1) == 0
    # Failed at the catch-up size, retried at the normal one, then back to catching up.
    assert [batch for _, batch in flaky.attempts] == [ids(0, 9), ids(0, 3), ids(3, 9)]
    assert flaky.stored == ids(0, 12)


async def test_a_barrier_waits_for_earlier_reservations_and_their_flush(
    sqlite_history: RecordingHistory,
) -> None:
    """`flushed_through_now` (the seasons' watermark): a reservation taken before it must be
    committed and written before it returns; one taken after it is not waited for."""
    batcher = WriteBatcher(sqlite_history, flush_interval=0.05, flush_max_events=500)
    await batcher.start()
    try:
        early = batcher.reserve(2)
        barrier = asyncio.create_task(batcher.flushed_through_now())
        await asyncio.sleep(0.1)
        later = batcher.reserve(1)  # after the barrier: never waited for
        assert not barrier.done()
        early.commit(events(0, 2))
        await asyncio.wait_for(barrier, 5)
        assert sqlite_history.written == [ids(0, 2)]
        assert later.count == 1
        later.cancel()
        await asyncio.wait_for(batcher.flushed_through_now(), 5)  # nothing open: at once
    finally:
        await batcher.close(5)


async def test_a_fence_barrier_skips_a_reservation_parked_in_a_recovery(
    sqlite_history: RecordingHistory,
) -> None:
    """A write waiting for a rebuild holds its reservation (it applied nothing): the rebuild
    fence's barrier must not wait for it (it would wait for the rebuild that waits for the
    fence), the seasons' barrier still does; once out of the recovery it counts as new."""
    batcher = WriteBatcher(sqlite_history, flush_interval=0.05, flush_max_events=500)
    await batcher.start()
    in_recovery = asyncio.Event()
    recovered = asyncio.Event()

    async def write() -> None:
        with batcher.reserve(1) as reservation:
            with batcher.parking():
                in_recovery.set()
                await recovered.wait()
            await asyncio.sleep(0.1)  # applying, after the recovery
            reservation.commit(events(0, 1))

    try:
        writer = asyncio.create_task(write())
        await in_recovery.wait()
        seasons_barrier = asyncio.create_task(batcher.flushed_through_now())
        await asyncio.wait_for(batcher.flushed_through_now(skip_parked=True), 5)
        assert not seasons_barrier.done()
        recovered.set()
        await asyncio.sleep(0)
        # Out of the recovery: a fence begun now waits for its commit and flush.
        fence = asyncio.create_task(batcher.flushed_through_now(skip_parked=True))
        await asyncio.sleep(0.05)
        assert not fence.done()
        await asyncio.wait_for(asyncio.gather(fence, seasons_barrier, writer), 5)
        assert sqlite_history.written == [ids(0, 1)]
        await asyncio.wait_for(batcher.flushed_through_now(), 5)  # nothing left open
    finally:
        await batcher.close(5)


async def test_a_fence_barrier_ends_when_all_but_the_parked_reservations_settle(
    sqlite_history: RecordingHistory,
) -> None:
    """Two writes of one epoch, one parked in a recovery: once the other commits, only the
    parked one is left and the fence's barrier returns (it was never woken, a deadlock)."""
    batcher = WriteBatcher(sqlite_history, flush_interval=0.05, flush_max_events=500)
    await batcher.start()
    in_recovery = asyncio.Event()
    recovered = asyncio.Event()

    async def parked_write() -> None:
        with batcher.reserve(1) as reservation:
            with batcher.parking():
                in_recovery.set()
                await recovered.wait()
            reservation.commit(events(1, 1))

    try:
        other = batcher.reserve(1)
        writer = asyncio.create_task(parked_write())
        await in_recovery.wait()
        fence = asyncio.create_task(batcher.flushed_through_now(skip_parked=True))
        await asyncio.sleep(0.05)
        assert not fence.done()  # `other` is open and not parked
        other.commit(events(0, 1))
        await asyncio.wait_for(fence, 5)
        recovered.set()
        await asyncio.wait_for(writer, 5)
    finally:
        recovered.set()
        await batcher.close(5)
