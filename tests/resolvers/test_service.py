"""LeaderboardService when the ranking store applies a batch only in part (a cluster node
failing between the dry run and the writes)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from batcher import WriteBatcher
from resolvers.errors import ApiError, ErrorCode
from resolvers.service import IncrementRequest, LeaderboardService
from store.boards import Board, ResetPeriod
from store.embedded_ranking import EmbeddedRankingStore
from store.errors import PartiallyApplied, StoreUnavailable
from store.models import IncrementOutcome, ScoreIncrement
from store.recovery import RankingRecovery
from store.sql import SqlScoreHistory
from tests.support.history_database import history_totals

pytestmark = pytest.mark.integration

BOARDS = (Board("global", ResetPeriod.MONTHLY), Board("alltime", ResetPeriod.NEVER))
WAIT = 10.0


class FirstBoardOnlyStore(EmbeddedRankingStore):
    """Applies the increments of the first board of a batch, then fails the rest, as a
    cluster does when the other board's node dies after the dry run."""

    async def increment(self, increments: Sequence[ScoreIncrement]) -> list[IncrementOutcome]:
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
        recovery=RankingRecovery(
            ranking, history, claim_seconds=WAIT, wait_seconds=WAIT, settle_seconds=0
        ),
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
