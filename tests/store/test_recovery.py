"""`RankingRecovery` on real stores: Redis + MariaDB, and the embedded store + SQLite.

Two recoveries over one live store (two `RedisRankingStore` clients of one Redis and key
prefix; one shared embedded store) play two instances of the service.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from store.boards import Board, ResetPeriod
from store.embedded_ranking import EmbeddedRankingStore
from store.errors import RankingNotLoaded, StoreUnavailable
from store.models import ScoreEvent, ScoreIncrement
from store.ports import RankingStore
from store.recovery import Drift, RankingRecovery
from store.redis import RedisRankingStore
from store.sql import SqlScoreHistory
from tests.support.shared_services import REDIS_URL

pytestmark = pytest.mark.integration

BOARDS = (Board("global", ResetPeriod.MONTHLY),)
BOARD = "global"
PERIOD = "2026-05"


@dataclass
class Rebuilds:
    """A `RebuildObserver` that counts."""

    players: list[int] = field(default_factory=list)
    failures: int = 0

    def rebuilt(self, players: int, seconds: float) -> None:
        self.players.append(players)

    def rebuild_failed(self, seconds: float) -> None:
        self.failures += 1


@dataclass
class Stores:
    """One backend pair: a way to open "another instance's" live store, and the history."""

    open_ranking: Callable[[], RankingStore]
    history: SqlScoreHistory
    rankings: list[RankingStore] = field(default_factory=list)

    def ranking(self) -> RankingStore:
        """A live store client (the same store for the embedded backend)."""
        ranking = self.open_ranking()
        self.rankings.append(ranking)
        return ranking

    def recovery(
        self, ranking: RankingStore, observer: Rebuilds, *, wait_seconds: float = 10.0
    ) -> RankingRecovery:
        """A recovery with short timings."""
        return RankingRecovery(
            ranking,
            self.history,
            claim_seconds=30,
            wait_seconds=wait_seconds,
            observer=observer,
        )


@pytest.fixture(params=["redis+mysql", "embedded+sqlite"])
def history_url(request: pytest.FixtureRequest) -> str:
    """An empty history database: MariaDB with Redis, SQLite with the embedded store."""
    fixture = "mysql_database_url" if request.param == "redis+mysql" else "sqlite_database_url"
    return str(request.getfixturevalue(fixture))


@pytest.fixture
async def stores(history_url: str, redis_prefix: str) -> AsyncIterator[Stores]:
    """Each backend pair, the history holding three players' events (one client event id)."""
    url = history_url
    if url.startswith("mysql"):

        def open_ranking() -> RankingStore:
            return RedisRankingStore.from_url(
                REDIS_URL, key_prefix=redis_prefix, boards=BOARDS, retention=timedelta(days=35)
            )

    else:
        shared = EmbeddedRankingStore(boards=BOARDS)

        def open_ranking() -> RankingStore:
            return shared

    history = SqlScoreHistory(url)
    await history.connect()
    await history.migrate()
    await history.append(
        [
            event("ann", 30, "ann-1", client=True),
            event("bob", 20, "~bob-1"),
            event("bob", 5, "~bob-2"),
            event("cy", 10, "~cy-1"),
        ]
    )
    result = Stores(open_ranking, history)
    yield result
    await history.close()
    for ranking in {id(ranking): ranking for ranking in result.rankings}.values():
        await ranking.close()


def event(
    username: str, delta: int, event_id: str, *, client: bool = False, windows_ago: int = 0
) -> ScoreEvent:
    """A stored event of the test's period; a client id recorded `windows_ago` buckets of
    the (default, one-day) idempotency window before the current one."""
    bucket = int(time.time() * 1000) // 86_400_000
    return ScoreEvent(
        board=BOARD,
        period=PERIOD,
        username=username,
        delta=delta,
        event_id=event_id,
        client_event_id=client,
        created_at_ms=int(time.time() * 1000),
        id_life=bucket - windows_ago if client else 0,
    )


def increment(username: str, delta: int, event_id: str, *, client: bool) -> ScoreIncrement:
    """An increment of the test's period."""
    return ScoreIncrement(
        board=BOARD,
        period=PERIOD,
        username=username,
        delta=delta,
        event_id=event_id,
        client_event_id=client,
    )


async def test_ensure_loaded_rebuilds_totals_and_seen_event_ids(stores: Stores) -> None:
    ranking = stores.ranking()
    rebuilds = Rebuilds()
    with pytest.raises(RankingNotLoaded):
        await ranking.player_count(BOARD, PERIOD)
    await stores.recovery(ranking, rebuilds).ensure_loaded(BOARD, PERIOD)
    assert await ranking.totals(BOARD, PERIOD) == {"ann": 30, "bob": 25, "cy": 10}
    assert rebuilds.players == [3]
    # The client's event id is known again: a retry of it is not applied twice.
    (outcome,) = await ranking.increment([increment("ann", 30, "ann-1", client=True)])
    assert not outcome.applied
    assert outcome.score == 30


async def test_a_rebuild_restores_only_the_event_ids_inside_the_window(stores: Stores) -> None:
    # One client id of the window's previous bucket (a live store still checks it), one
    # of the bucket before (a live store has forgotten it).
    await stores.history.append(
        [
            event("dee", 4, "dee-inside", client=True, windows_ago=1),
            event("dee", 6, "dee-outside", client=True, windows_ago=2),
        ]
    )
    ranking = stores.ranking()
    await stores.recovery(ranking, Rebuilds()).ensure_loaded(BOARD, PERIOD)
    assert (await ranking.totals(BOARD, PERIOD))["dee"] == 10
    retries = await ranking.increment(
        [
            increment("dee", 4, "dee-inside", client=True),
            increment("dee", 6, "dee-outside", client=True),
        ]
    )
    # Inside: still remembered, not applied again. Beyond: forgotten, applied.
    assert [(o.applied, o.score) for o in retries] == [(False, 10), (True, 16)]


async def test_a_rebuild_restores_each_writers_last_sequence(stores: Stores) -> None:
    # Idempotency per writer: the history's rows carry the call's writer and sequence; a
    # rebuild (after Redis lost the period) restores each writer's highest one.
    def of_writer(username: str, delta: int, writer: str, sequence: int) -> ScoreEvent:
        return dataclasses.replace(
            event(username, delta, f"~{writer}-{sequence}-{username}"),
            writer_id=writer,
            sequence=sequence,
        )

    await stores.history.append(
        [of_writer("dee", 1, "gs", 3), of_writer("dee", 1, "gs", 7), of_writer("eve", 2, "o", 0)]
    )
    ranking = stores.ranking()
    await stores.recovery(ranking, Rebuilds()).ensure_loaded(BOARD, PERIOD)
    replays = await ranking.increment(
        [
            dataclasses.replace(
                increment("dee", 1, "~r1", client=False), writer_id="gs", sequence=7
            ),
            dataclasses.replace(
                increment("eve", 2, "~r2", client=False), writer_id="o", sequence=0
            ),
        ]
    )
    assert [o.applied for o in replays] == [False, False]
    [later] = await ranking.increment(
        [dataclasses.replace(increment("dee", 1, "~r3", client=False), writer_id="gs", sequence=8)]
    )
    assert (later.applied, later.score) == (True, 3)


async def test_an_erasure_does_not_lower_a_writers_restored_sequence(stores: Stores) -> None:
    # The sequence lives in writer_sequences, not in the erased player's rows: the replay
    # of a call that scored only the erased player is still refused after a rebuild.
    def of_writer(username: str, sequence: int) -> ScoreEvent:
        return dataclasses.replace(
            event(username, 1, f"~gs-{sequence}"), writer_id="gs", sequence=sequence
        )

    await stores.history.append([of_writer("eve", 3), of_writer("dee", 7)])
    await stores.history.player_records().erase("dee")
    ranking = stores.ranking()
    await stores.recovery(ranking, Rebuilds()).ensure_loaded(BOARD, PERIOD)
    [replay] = await ranking.increment(
        [dataclasses.replace(increment("dee", 1, "~r1", client=False), writer_id="gs", sequence=7)]
    )
    assert (replay.applied, replay.score) == (False, 0)


async def test_a_loaded_period_is_not_rebuilt(stores: Stores) -> None:
    ranking = stores.ranking()
    await ranking.load(BOARD, PERIOD, [("zed", 1)], [])
    rebuilds = Rebuilds()
    await stores.recovery(ranking, rebuilds).ensure_loaded(BOARD, PERIOD)
    assert rebuilds.players == []
    assert await ranking.totals(BOARD, PERIOD) == {"zed": 1}


async def test_instances_racing_rebuild_once(stores: Stores) -> None:
    rebuilds = Rebuilds()
    recoveries = [stores.recovery(stores.ranking(), rebuilds) for _ in range(3)]
    # Each instance also has concurrent callers: they share its one recovery.
    await asyncio.gather(
        *(recovery.ensure_loaded(BOARD, PERIOD) for recovery in recoveries for _ in range(4))
    )
    assert rebuilds.players == [3]
    for ranking in stores.rankings:
        assert await ranking.totals(BOARD, PERIOD) == {"ann": 30, "bob": 25, "cy": 10}


async def test_a_waiter_returns_once_the_claimer_has_loaded(stores: Stores) -> None:
    other, ranking = stores.ranking(), stores.ranking()
    token = await other.claim_rebuild(BOARD, PERIOD, 30)
    assert token is not None
    rebuilds = Rebuilds()
    waiting = asyncio.create_task(stores.recovery(ranking, rebuilds).ensure_loaded(BOARD, PERIOD))
    await asyncio.sleep(0.2)
    assert not waiting.done()
    await other.load(BOARD, PERIOD, [("zed", 7)], [])
    await asyncio.wait_for(waiting, 5)
    await other.release_rebuild(BOARD, PERIOD, token)
    # It did not rebuild on top of the other instance's load.
    assert rebuilds.players == []
    assert await ranking.totals(BOARD, PERIOD) == {"zed": 7}


async def test_a_claim_never_finished_times_out(stores: Stores) -> None:
    other, ranking = stores.ranking(), stores.ranking()
    assert await other.claim_rebuild(BOARD, PERIOD, 30) is not None
    recovery = stores.recovery(ranking, Rebuilds(), wait_seconds=0.3)
    with pytest.raises(StoreUnavailable, match="another instance"):
        await recovery.ensure_loaded(BOARD, PERIOD)
    with pytest.raises(StoreUnavailable, match="another instance"):
        await recovery.rebuild(BOARD, PERIOD)


async def test_a_failed_rebuild_is_reported_and_releases_the_claim(stores: Stores) -> None:
    ranking = stores.ranking()
    rebuilds = Rebuilds()
    recovery = stores.recovery(ranking, rebuilds)
    await stores.history.close()
    with pytest.raises(StoreUnavailable):
        await recovery.ensure_loaded(BOARD, PERIOD)
    assert rebuilds.failures == 1
    assert not await ranking.is_loaded(BOARD, PERIOD)
    # The claim was given back: the next attempt rebuilds at once.
    await stores.history.connect()
    await recovery.ensure_loaded(BOARD, PERIOD)
    assert rebuilds.players == [3]


async def test_rebuild_replaces_a_loaded_ranking_and_reports_progress(stores: Stores) -> None:
    ranking = stores.ranking()
    await ranking.load(BOARD, PERIOD, [("zed", 1), ("ann", 99)], [])
    steps: list[tuple[int, int]] = []
    players = await stores.recovery(ranking, Rebuilds()).rebuild(
        BOARD, PERIOD, lambda what, done, total: steps.append((done, total))
    )
    assert players == 3
    assert await ranking.totals(BOARD, PERIOD) == {"ann": 30, "bob": 25, "cy": 10}
    assert steps == [(0, 4), (1, 4), (2, 4), (3, 4), (4, 4)]


async def test_reconcile_reports_the_drift_and_repairs_it(stores: Stores) -> None:
    ranking = stores.ranking()
    await ranking.load(BOARD, PERIOD, [("ann", 30), ("bob", 24), ("zed", 1)], [])
    recovery = stores.recovery(ranking, Rebuilds())
    assert await recovery.reconcile(BOARD, PERIOD) == [
        Drift(username="bob", live=24, history=25),
        Drift(username="cy", live=None, history=10),
        Drift(username="zed", live=1, history=None),
    ]
    assert await ranking.totals(BOARD, PERIOD) == {"ann": 30, "bob": 25, "cy": 10}
    rebuilds = Rebuilds()
    steps: list[str] = []
    in_sync = stores.recovery(ranking, rebuilds)
    assert await in_sync.reconcile(BOARD, PERIOD, lambda what, *_: steps.append(what)) == []
    assert rebuilds.players == []
    assert steps[-1] == "in sync"


async def test_reconcile_loads_a_period_that_is_not_loaded(stores: Stores) -> None:
    ranking = stores.ranking()
    drifts = await stores.recovery(ranking, Rebuilds()).reconcile(BOARD, PERIOD)
    assert [drift.username for drift in drifts] == ["ann", "bob", "cy"]
    assert await ranking.is_loaded(BOARD, PERIOD)
