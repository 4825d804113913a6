"""Rebuilds reading from a MariaDB read replica: used when caught up, never when it lags.

Two private MariaDB servers with binary logs and GTIDs, the second a replica of the first,
and the shared Redis for the live ranking. Which server ran the history's reads is read
from each server's general query log (a table, so it can be queried), not guessed from
timings.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import httpx
import pytest

from store.boards import parse_boards
from store.models import ScoreEvent, ScoreIncrement
from store.recovery import RankingRecovery
from store.redis import RedisRankingStore
from store.sql import REPLICA_RETRY_SECONDS, SqlScoreHistory
from tests.support.cli import INCREMENTS, leaderboard
from tests.support.graphql_client import GraphQLHttp
from tests.support.history_database import history_totals
from tests.support.private_servers import PrivateMariaDB, replication_options
from tests.support.service_fixtures import TOKEN, ProcessFactory
from tests.support.shared_services import REDIS_URL

pytestmark = pytest.mark.integration

BOARDS = parse_boards("global:monthly")
BOARD = "global"
PERIOD = BOARDS[0].current_period()
DATABASE = "lb"
TOTALS_STATEMENT = "SELECT username, SUM(delta) FROM score_events WHERE board =%"
CLIENT_EVENTS_STATEMENT = "SELECT username, event_id, delta FROM score_events WHERE board =%"
# Short, so the lagging cases take about a second.
WAIT_SECONDS = 0.5
# The history's own catch-up waits (the tests' waits use another timeout); the driver
# writes a float as 0.5e0.
CATCH_UP_STATEMENT = f"SELECT MASTER_GTID_WAIT(%, {WAIT_SECONDS}e0)"
FALLBACK_WARNING = "history reads use the primary"


@dataclass
class Servers:
    """A primary and its replica, each with the general query log on."""

    primary: PrivateMariaDB
    replica: PrivateMariaDB

    @property
    def primary_url(self) -> str:
        """The history database on the primary."""
        return self.primary.url(DATABASE)

    @property
    def replica_url(self) -> str:
        """The same database on the replica."""
        return self.replica.url(DATABASE)


async def log_queries(server: PrivateMariaDB) -> None:
    """Log every statement into mysql.general_log (a table: not replicated, queryable)."""
    await server.execute("SET GLOBAL log_output = 'TABLE'")
    await server.execute("SET GLOBAL general_log = 1")


async def statements_run(server: PrivateMariaDB, pattern: str) -> int:
    """How many statements matching the LIKE `pattern` clients ran on the server so far."""
    ((count,),) = await server.execute(
        "SELECT COUNT(*) FROM mysql.general_log "
        "WHERE command_type = 'Query' AND CONVERT(argument USING utf8mb4) LIKE %s",
        pattern,
    )
    assert isinstance(count, int)
    return count


@pytest.fixture
async def servers() -> AsyncIterator[Servers]:
    """A running primary and a running replica of it, the `lb` database on both."""
    primary = PrivateMariaDB(replication_options(server_id=1))
    replica = PrivateMariaDB(replication_options(server_id=2))
    try:
        # One after the other: a failed start must not leave the other one starting.
        await primary.start()
        await replica.start()
        await replica.replicate_from(primary)
        await primary.create_database(DATABASE)
        await replica.wait_for_replication(primary)
        for server in (primary, replica):
            await log_queries(server)
        yield Servers(primary, replica)
    finally:
        primary.cleanup()
        replica.cleanup()


@pytest.fixture
async def ranking(redis_prefix: str) -> AsyncIterator[RedisRankingStore]:
    """The live ranking on the shared Redis, under the test's own prefix."""
    store = RedisRankingStore.from_url(
        REDIS_URL, key_prefix=redis_prefix, boards=BOARDS, retention=timedelta(days=35)
    )
    yield store
    await store.close()


@contextlib.asynccontextmanager
async def migrated_history(
    primary_url: str, read_url: str = "", *, retry_seconds: float = REPLICA_RETRY_SECONDS
) -> AsyncIterator[SqlScoreHistory]:
    """A connected history on the primary, its schema in place, reading `read_url` when given
    (after waiting up to WAIT_SECONDS for it to catch up); closed on leaving."""
    history = SqlScoreHistory(
        primary_url,
        read_url=read_url,
        replica_wait_seconds=WAIT_SECONDS,
        replica_retry_seconds=retry_seconds,
    )
    await history.connect()
    try:
        await history.migrate()
        yield history
    finally:
        await history.close()


def recovery_over(ranking: RedisRankingStore, history: SqlScoreHistory) -> RankingRecovery:
    """A recovery that rebuilds at once (no fence: nobody else to wait for)."""
    return RankingRecovery(ranking, history, claim_seconds=30, wait_seconds=10)


def events(first: int, count: int, *, round_number: int) -> list[ScoreEvent]:
    """`count` events of players p{first}..: every third with a client event id."""
    return [
        ScoreEvent(
            board=BOARD,
            period=PERIOD,
            username=f"p{number}",
            delta=number + round_number,
            event_id=f"client-{round_number}-{number}"
            if number % 3 == 0
            else f"~{round_number:04x}{number:028x}",
            client_event_id=number % 3 == 0,
            created_at_ms=1_790_000_000_000,
            # Recorded in the idempotency window's current bucket (a rebuild restores it).
            id_life=int(time.time() * 1000) // 86_400_000 if number % 3 == 0 else 0,
        )
        for number in range(first, first + count)
    ]


async def assert_rebuilt_exactly(
    ranking: RedisRankingStore, history: SqlScoreHistory, primary_url: str, client_event_id: str
) -> None:
    """Rebuild, then the live ranking equals the primary's totals and knows its client ids."""
    players = await recovery_over(ranking, history).rebuild(BOARD, PERIOD)
    expected = await history_totals(primary_url)
    assert players == len(expected)
    assert await ranking.totals(BOARD, PERIOD) == expected
    # A client event id stored on the primary is known: a retry of it is not applied again.
    # The same increment again: "client-<round>-<number>" was p<number>'s <number + round>.
    _, round_number, number = client_event_id.split("-")
    username = f"p{number}"
    (outcome,) = await ranking.increment(
        [
            ScoreIncrement(
                board=BOARD,
                period=PERIOD,
                username=username,
                delta=int(number) + int(round_number),
                event_id=client_event_id,
                client_event_id=True,
            )
        ]
    )
    assert not outcome.applied
    assert outcome.score == expected[username]


def environment(servers: Servers, redis_prefix: str) -> dict[str, str]:
    """The settings of a process on the shared Redis, the primary, and the replica to read."""
    return {
        "LEADERBOARD_REDIS_URL": REDIS_URL,
        "LEADERBOARD_KEY_PREFIX": redis_prefix,
        "LEADERBOARD_DATABASE_URL": servers.primary_url,
        "LEADERBOARD_DATABASE_READ_URL": servers.replica_url,
        "LEADERBOARD_BOARDS": "global:monthly",
        "LEADERBOARD_WRITE_TOKEN": TOKEN,
    }


def fallback_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The warnings saying a read went to the primary instead of the replica."""
    return [
        record.getMessage()
        for record in caplog.records
        if record.levelname == "WARNING" and FALLBACK_WARNING in record.getMessage()
    ]


async def test_rebuild_reads_the_replica_when_it_has_caught_up(
    servers: Servers, ranking: RedisRankingStore, caplog: pytest.LogCaptureFixture
) -> None:
    async with migrated_history(servers.primary_url, servers.replica_url) as history:
        await history.append(events(0, 300, round_number=1))
        # Straight after the write, the replica may not have it yet: the catch-up waits.
        await assert_rebuilt_exactly(ranking, history, servers.primary_url, "client-1-3")
        assert await history.replica_status() == "ok"
    assert await statements_run(servers.replica, TOTALS_STATEMENT) == 1
    assert await statements_run(servers.replica, CLIENT_EVENTS_STATEMENT) == 1
    # One catch-up per read: totals, client event ids, writers' last sequences.
    assert await statements_run(servers.replica, CATCH_UP_STATEMENT) == 3
    assert await statements_run(servers.primary, TOTALS_STATEMENT) == 0
    assert await statements_run(servers.primary, CLIENT_EVENTS_STATEMENT) == 0
    assert fallback_warnings(caplog) == []


async def test_rebuild_never_reads_a_replica_that_lags(
    servers: Servers, ranking: RedisRankingStore, caplog: pytest.LogCaptureFixture
) -> None:
    retry_seconds = 1.0
    async with migrated_history(
        servers.primary_url, servers.replica_url, retry_seconds=retry_seconds
    ) as history:
        await history.append(events(0, 200, round_number=1))
        await servers.replica.wait_for_replication(servers.primary)
        # The replica receives but no longer applies: it falls behind.
        await servers.replica.execute("STOP SLAVE SQL_THREAD")
        await history.append(events(100, 200, round_number=2))
        stale = await history_totals(servers.replica_url)
        assert stale != await history_totals(servers.primary_url)

        started = time.monotonic()
        await assert_rebuilt_exactly(ranking, history, servers.primary_url, "client-2-201")
        # The bounded wait for the replica, once: the second read skips it.
        assert WAIT_SECONDS <= time.monotonic() - started < WAIT_SECONDS + 3
        (warning,) = fallback_warnings(caplog)
        assert "did not reach the primary's GTID position" in warning
        assert (await history.replica_status() or "").startswith("skipped for ")
        assert await statements_run(servers.replica, TOTALS_STATEMENT) == 0
        assert await statements_run(servers.replica, CATCH_UP_STATEMENT) == 1
        assert await statements_run(servers.primary, TOTALS_STATEMENT) == 1
        assert await statements_run(servers.primary, CLIENT_EVENTS_STATEMENT) == 1

        # Caught up again and the retry interval over: reads go back to the replica.
        await servers.replica.execute("START SLAVE SQL_THREAD")
        await servers.replica.wait_for_replication(servers.primary)
        await asyncio.sleep(retry_seconds)  # the interval is time, there is no event to await
        await assert_rebuilt_exactly(ranking, history, servers.primary_url, "client-1-3")
        assert await statements_run(servers.replica, TOTALS_STATEMENT) == 1
        assert await statements_run(servers.primary, TOTALS_STATEMENT) == 1
        assert len(fallback_warnings(caplog)) == 1


async def test_rebuild_and_writes_work_with_the_replica_down(
    servers: Servers, ranking: RedisRankingStore, caplog: pytest.LogCaptureFixture
) -> None:
    async with migrated_history(servers.primary_url, servers.replica_url) as history:
        await history.append(events(0, 100, round_number=1))
        await assert_rebuilt_exactly(ranking, history, servers.primary_url, "client-1-3")
        assert await statements_run(servers.replica, TOTALS_STATEMENT) == 1
        # The replica crashes under a running history holding pooled connections to it.
        await servers.replica.kill()
        await history.append(events(50, 100, round_number=2))
        await assert_rebuilt_exactly(ranking, history, servers.primary_url, "client-2-51")
        assert len(fallback_warnings(caplog)) == 1
        assert (await history.replica_status() or "").startswith("unavailable: ")

    # A process starting while the replica is down: starts, writes, rebuilds.
    async with migrated_history(servers.primary_url, servers.replica_url) as restarted:
        await restarted.append(events(120, 30, round_number=3))
        await assert_rebuilt_exactly(ranking, restarted, servers.primary_url, "client-3-123")
    assert len(fallback_warnings(caplog)) == 2
    assert await statements_run(servers.primary, TOTALS_STATEMENT) == 2


async def test_no_gtids_on_the_primary_means_no_replica_reads(
    ranking: RedisRankingStore, caplog: pytest.LogCaptureFixture
) -> None:
    # The primary keeps no binary log, so no replica's lag can be checked; the "replica"
    # is another server holding the schema but none of the events: reading it would
    # rebuild an empty ranking.
    async with PrivateMariaDB() as primary, PrivateMariaDB() as other:
        primary_url = await primary.create_database(DATABASE)
        other_url = await other.create_database(DATABASE)
        async with migrated_history(other_url):
            pass  # the schema only
        async with migrated_history(primary_url, other_url) as history:
            await history.append(events(0, 50, round_number=1))
            await assert_rebuilt_exactly(ranking, history, primary_url, "client-1-3")
    (warning,) = fallback_warnings(caplog)
    assert "GTIDs are off on the primary" in warning


async def test_the_repair_commands_read_the_configured_replica(
    servers: Servers, redis_prefix: str
) -> None:
    # The setting reaches the history the CLI (and the service) opens.
    async with migrated_history(servers.primary_url) as history:
        await history.append(events(0, 30, round_number=1))
    repair_environment = environment(servers, redis_prefix)
    code, output = await leaderboard(repair_environment, "rebuild", "--board", BOARD)
    assert code == 0, output
    assert f"rebuilt {BOARD}/{PERIOD} from the history: 30 players" in output
    assert FALLBACK_WARNING not in output
    assert await statements_run(servers.replica, TOTALS_STATEMENT) == 1
    assert await statements_run(servers.replica, CLIENT_EVENTS_STATEMENT) == 1
    assert await statements_run(servers.primary, TOTALS_STATEMENT) == 0


async def test_the_service_starts_and_writes_with_the_replica_down(
    servers: Servers, redis_prefix: str, service_process: ProcessFactory
) -> None:
    await servers.replica.kill()
    process = service_process(environment(servers, redis_prefix))
    await process.start()  # returns once /readyz answers 200
    async with httpx.AsyncClient(base_url=process.url) as client:
        checks = (await client.get("/readyz")).json()
        assert checks["history"] == "ok"
        assert checks["history_replica"].startswith("unavailable: "), checks
        increments = [{"username": f"p{index}", "delta": index + 1} for index in range(20)]
        await GraphQLHttp(client, token=TOKEN).data(INCREMENTS, {"increments": increments})
    assert await process.terminate()  # drains the write buffer into the primary
    assert await history_totals(servers.primary_url) == {
        f"p{index}": index + 1 for index in range(20)
    }
    assert FALLBACK_WARNING in process.log()
