"""What only the embedded store has: a bounded in-process change feed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import cast

import pytest

from store.embedded_ranking import EmbeddedRankingStore
from store.models import ScoreChange
from tests.support.ranking import BOARDS, GLOBAL, PERIOD, inc

pytestmark = pytest.mark.unit


async def test_a_slow_subscriber_loses_the_oldest_changes() -> None:
    store = EmbeddedRankingStore(boards=BOARDS, change_buffer=2)
    await store.load(GLOBAL, PERIOD, [], [])
    feed = cast(AsyncGenerator[ScoreChange, None], store.changes(GLOBAL))
    try:
        first = asyncio.create_task(anext(feed))
        await asyncio.sleep(0)  # subscribed, waiting
        await store.increment([inc("a", 1)])
        assert (await first).username == "a"
        await store.increment([inc("b", 1), inc("c", 1), inc("d", 1)])  # nobody reading
        assert [(await anext(feed)).username for _ in range(2)] == ["c", "d"]
    finally:
        await feed.aclose()
    await store.increment([inc("e", 1)])  # closed: nobody to deliver to, nothing fails
