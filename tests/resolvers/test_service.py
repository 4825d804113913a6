"""LeaderboardService when the ranking store applies a batch only in part (a cluster node
failing between the dry run and the writes), and when a batch meets many lost rankings."""

from __future__ import annotations

import re
import time
from collections.abc import Sequence

import pytest

from batcher import WriteBatcher
from resolvers.errors import ApiError, ErrorCode
from resolvers.service import IncrementRequest, LeaderboardService
from server.resources import build_resources, running
from store.boards import Board, ResetPeriod
from store.embedded_ranking import EmbeddedRankingStore
from store.errors import PartiallyApplied, StoreUnavailable
from store.models import IncrementOutcome, ScoreIncrement
from store.recovery import RankingRecovery
from store.sql import SqlScoreHistory
from tests.support.asgi_app import make_settings
from tests.support.history_database import history_totals, query_history
from tests.support.manual_clock import ManualClock
from tests.support.shared_services import delete_prefix

pytestmark = pytest.mark.integration

BOARDS = (Board("global", ResetPeriod.MONTHLY), Board("alltime", ResetPeriod.NEVER))
WAIT = 10.0


class FirstBoardOnlyStore(EmbeddedRankingStore):
    """Applies the increments of the first board of a batch, then fails the rest, as a
    cluster does when the other board's node dies after the dry run."""

    async def increment(
        self, increments: Sequence[ScoreIncrement], *, ranks: bool = True
    ) -> list[IncrementOutcome]:
        first = [item for item in increments if item.board == increments[0].board]
        applied = await super().increment(first)
        if len(first) == len(increments):
            return applied
        raise PartiallyApplied(applied, StoreUnavailable("the other node is gone"))


async def test_a_batch_applied_in_part_persists_the_part_and_answers_unavailable(
    sqlite_database_url: str,
) -> None:
    history = SqlScoreHistory(sqlite_database_url)
    await history.connect()
    await history.migrate()
    ranking = FirstBoardOnlyStore(boards=BOARDS)
    batcher = WriteBatcher(history, flush_interval=0.01)
    await batcher.start()
    service = LeaderboardService(
        ranking=ranking,
        batcher=batcher,
        recovery=RankingRecovery(ranking, history, claim_seconds=WAIT, wait_seconds=WAIT),
        boards=BOARDS,
        max_delta=100,
        max_batch_increments=10,
    )
    try:
        requests = [
            IncrementRequest(username="ana", delta=5, board="global", event_id="match-1:ana"),
            IncrementRequest(username="bo", delta=7, board="alltime", event_id="match-1:bo"),
        ]
        with pytest.raises(ApiError) as refused:
            await service.increment(requests)
        assert refused.value.code is ErrorCode.UNAVAILABLE
        assert "eventIds" in refused.value.message
        # The client retries the whole batch: the applied part is recognised by its id.
        with pytest.raises(ApiError):
            await service.increment(requests)
        assert batcher.reserved == 0
    finally:
        assert await batcher.close(WAIT) == 0
        await history.close()
    # What reached the live ranking reached the history, once; nothing else did.
    assert await history_totals(sqlite_database_url) == {"ana": 5}


async def test_a_batch_over_more_lost_periods_than_retries_is_rebuilt_and_applied(
    redis_prefix: str, mysql_database_url: str, sqlite_database_url: str
) -> None:
    # Six boards lost at once (Redis emptied): one batch meets six unloaded periods, one
    # after the other; each is rebuilt once and the batch then applies. It used to give
    # up after four store calls whatever the number of periods ("being rebuilt; retry").
    boards = [f"b{index}" for index in range(6)]
    settings = make_settings(
        "redis-mysql",
        redis_prefix=redis_prefix,
        mysql_url=mysql_database_url,
        sqlite_url=sqlite_database_url,
        LEADERBOARD_BOARDS=",".join(f"{board}:monthly" for board in boards),
        # Answered once in MySQL: the rebuild below finds the first batch there.
        ack="persisted",
    )
    async with running(build_resources(settings)) as resources:
        service = resources.service
        await service.increment(
            [
                IncrementRequest(username="ana", delta=3, board=board, event_id=None)
                for board in boards
            ]
        )
        await delete_prefix(redis_prefix)
        outcomes = await service.increment(
            [
                IncrementRequest(username="ana", delta=2, board=board, event_id=None)
                for board in boards
            ]
        )
        assert [outcome.score for outcome in outcomes] == [5] * len(boards)


async def test_an_event_id_after_the_window_counts_again_in_redis_and_the_history_alike(
    sqlite_database_url: str,
) -> None:
    # The idempotency window end to end: the live store forgets an eventId after the
    # window and applies its next use; the history keeps both rows (each names the window
    # bucket it was recorded in), and a rebuild remembers the later use.
    window = 3_600.0
    clock = ManualClock()
    clock.now = time.time()
    history = SqlScoreHistory(sqlite_database_url)
    await history.connect()
    await history.migrate()
    ranking = EmbeddedRankingStore(boards=BOARDS, event_id_window_seconds=window, clock=clock)
    batcher = WriteBatcher(history, flush_interval=0.01)
    await batcher.start()

    def recovery(store: EmbeddedRankingStore) -> RankingRecovery:
        return RankingRecovery(
            store,
            history,
            claim_seconds=WAIT,
            wait_seconds=WAIT,
            event_id_window_seconds=window,
            clock=clock,
        )

    def service(store: EmbeddedRankingStore) -> LeaderboardService:
        return LeaderboardService(
            ranking=store,
            batcher=batcher,
            recovery=recovery(store),
            boards=BOARDS,
            max_delta=100,
            max_batch_increments=10,
            clock=clock,
        )

    request = IncrementRequest(username="ana", delta=5, board="alltime", event_id="w-1")
    try:
        first = service(ranking)
        assert [o.applied for o in await first.increment([request])] == [True]
        assert [o.applied for o in await first.increment([request])] == [False]
        clock.advance(2 * window + 1)
        assert [o.applied for o in await first.increment([request])] == [True]
        await batcher.flushed_through_now()
        assert await history_totals(sqlite_database_url) == {"ana": 10}
        # The live rankings are lost: the rebuild restores the later use (inside the window).
        second = service(
            EmbeddedRankingStore(boards=BOARDS, event_id_window_seconds=window, clock=clock)
        )
        [replay] = await second.increment([request])
        assert (replay.applied, replay.score) == (False, 10)
    finally:
        assert await batcher.close(WAIT) == 0
        await history.close()


async def test_generated_event_ids_are_short_and_unique_across_instances(
    sqlite_database_url: str,
) -> None:
    # Two instances (two services) write into one history without client event ids: every
    # generated id is '~', a fixed-length instance prefix of 64 random bits in 11 base64url
    # characters (5 bytes less per history row than 16 hex digits) and a hex counter, and
    # no two collide, within an instance or across them.
    history = SqlScoreHistory(sqlite_database_url)
    await history.connect()
    await history.migrate()
    batcher = WriteBatcher(history, flush_interval=0.01)
    await batcher.start()
    services = [
        LeaderboardService(
            ranking=(ranking := EmbeddedRankingStore(boards=BOARDS)),
            batcher=batcher,
            recovery=RankingRecovery(ranking, history, claim_seconds=WAIT, wait_seconds=WAIT),
            boards=BOARDS,
            max_delta=100,
            max_batch_increments=100,
        )
        for _ in range(2)
    ]
    try:
        for service in services:
            await service.increment(
                [
                    IncrementRequest(username=f"p{number}", delta=1, board="global", event_id=None)
                    for number in range(40)
                ]
            )
    finally:
        assert await batcher.close(WAIT) == 0
        await history.close()
    rows = await query_history(sqlite_database_url, "SELECT event_id FROM score_events")
    ids = [str(event_id) for (event_id,) in rows]
    assert len(ids) == len(set(ids)) == 80
    assert all(re.fullmatch(r"~[A-Za-z0-9_-]{11}[0-9a-f]+", event_id) for event_id in ids), ids
    assert max(len(event_id) for event_id in ids) == 1 + 11 + 2  # counters 0 .. 0x27
    assert len({event_id[:12] for event_id in ids}) == 2  # one prefix per instance
