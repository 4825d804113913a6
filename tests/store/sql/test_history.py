"""`SqlScoreHistory` on the real shared MariaDB (a fresh database per test) and on SQLite."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections import Counter
from urllib.parse import urlsplit

import pytest

from store.errors import StoreUnavailable
from store.models import ScoreEvent
from store.sql import SCHEMA_VERSION, SqlScoreHistory, mysql, schema_steps
from store.sql.mysql import MySqlDialect
from store.sql.sqlite import SqliteDialect
from tests.support.history_database import query_history
from tests.support.service_process import free_port
from tests.support.shared_services import mysql_url

pytestmark = pytest.mark.integration

BOARD = "global"
PERIOD = "2026-11"


async def row_count(url: str) -> int:
    """How many events are stored."""
    ((count,),) = await query_history(url, "SELECT COUNT(*) FROM score_events")
    assert isinstance(count, int)
    return count


def event(
    username: str,
    delta: int,
    event_id: str,
    *,
    board: str = BOARD,
    period: str = PERIOD,
    client: bool = False,
    id_life: int = 0,
) -> ScoreEvent:
    """A score event with a fixed timestamp."""
    return ScoreEvent(
        board=board,
        period=period,
        username=username,
        delta=delta,
        event_id=event_id,
        client_event_id=client,
        created_at_ms=1_790_000_000_000,
        id_life=id_life,
    )


async def test_migrate_twice_and_concurrently(history_url: str) -> None:
    # Four processes starting at once each migrate on their own connections.
    stores = [SqlScoreHistory(history_url) for _ in range(4)]
    for store in stores:
        await store.connect()
    try:
        await asyncio.gather(*(store.migrate() for store in stores))
        await stores[0].migrate()
        await stores[0].append([event("ann", 5, "e1")])
        await stores[1].migrate()
        assert await stores[2].totals(BOARD, PERIOD) == [("ann", 5)]
    finally:
        for store in stores:
            await store.close()
    assert await query_history(history_url, "SELECT id, version FROM schema_version") == [
        (1, SCHEMA_VERSION)
    ]


async def test_sqlite_history_uses_wal(sqlite_database_url: str) -> None:
    store = SqlScoreHistory(sqlite_database_url)
    await store.connect()
    await store.migrate()
    await store.close()
    assert await query_history(sqlite_database_url, "PRAGMA journal_mode") == [("wal",)]


async def test_mysql_schema(mysql_database_url: str) -> None:
    store = SqlScoreHistory(mysql_database_url)
    await store.connect()
    await store.migrate()
    await store.close()
    database = urlsplit(mysql_database_url).path.lstrip("/")
    columns = await query_history(
        mysql_database_url,
        "SELECT column_name, column_type, character_set_name, collation_name "
        f"FROM information_schema.columns WHERE table_schema = '{database}' "
        "AND table_name = 'score_events' ORDER BY ordinal_position",
    )
    assert columns == [
        ("id", "bigint(20)", None, None),
        ("board", "varchar(64)", "ascii", "ascii_bin"),
        ("period", "varchar(16)", "ascii", "ascii_bin"),
        ("username", "varchar(64)", "utf8mb4", "utf8mb4_bin"),
        ("delta", "bigint(20)", None, None),
        ("event_id", "varchar(128)", "ascii", "ascii_bin"),
        ("client_event_id", "tinyint(1)", None, None),
        ("created_at_ms", "bigint(20)", None, None),
        ("applied_at_us", "bigint(20)", None, None),
        ("presence", "tinyint(4)", None, None),
        ("id_life", "bigint(20)", None, None),
        ("writer_id", "varchar(128)", "ascii", "ascii_bin"),
        ("writer_sequence", "bigint(20)", None, None),
    ]
    indexes = await query_history(
        mysql_database_url,
        "SELECT index_name, non_unique, GROUP_CONCAT(column_name ORDER BY seq_in_index) "
        f"FROM information_schema.statistics WHERE table_schema = '{database}' "
        "AND table_name = 'score_events' GROUP BY index_name, non_unique ORDER BY index_name",
    )
    assert indexes == [
        ("PRIMARY", 0, "id"),
        ("score_events_event", 0, "board,period,event_id,id_life"),
        ("score_events_totals", 1, "board,period,username,delta"),
    ]
    # No username index (migration 11): a player's rows are found through the registry,
    # then each of their periods' range of the totals index.
    keys = await query_history(
        mysql_database_url,
        "SELECT index_name, GROUP_CONCAT(column_name ORDER BY seq_in_index) "
        f"FROM information_schema.statistics WHERE table_schema = '{database}' "
        "AND table_name = 'player_periods' GROUP BY index_name ORDER BY index_name",
    )
    assert keys == [
        ("player_periods_period", "board,period"),
        ("PRIMARY", "username,board,period"),
    ]
    plan = await query_history(
        mysql_database_url,
        "EXPLAIN DELETE e FROM player_periods r JOIN score_events e ON e.board = r.board "
        "AND e.period = r.period AND e.username = r.username WHERE r.username = 'ann'",
    )
    assert [(row[2], row[5]) for row in plan] == [
        ("r", "PRIMARY"),
        ("e", "score_events_totals"),
    ], plan
    # The recovery aggregate reads the covering index only (banned players left out by
    # the small bans table).
    plan = await query_history(
        mysql_database_url,
        "EXPLAIN SELECT username, SUM(delta) FROM score_events "
        "WHERE board = 'global' AND period = '2026-11' "
        "AND username NOT IN (SELECT username FROM player_bans) GROUP BY username",
    )
    assert plan[0][5] == "score_events_totals", plan
    assert "Using index" in str(plan[0][9]), plan
    # A rebuild's writers: a key range of their own small table (migration 10).
    keys = await query_history(
        mysql_database_url,
        "SELECT index_name, GROUP_CONCAT(column_name ORDER BY seq_in_index) "
        f"FROM information_schema.statistics WHERE table_schema = '{database}' "
        "AND table_name = 'writer_sequences' GROUP BY index_name",
    )
    assert keys == [("PRIMARY", "board,period,writer_id")]


async def test_append_and_totals(history: SqlScoreHistory) -> None:
    await history.append(
        [
            event("ann", 10, "e1"),
            event("bob", 7, "e2"),
            event("ann", -3, "e3"),
            event("ann", 100, "e4", period="2026-10"),
            event("bob", 1000, "e5", board="daily"),
        ]
    )
    await history.append([event("cid", 2**53 - 1, "e6"), event("dan", -(2**53 - 1), "e7")])
    assert sorted(await history.totals(BOARD, PERIOD)) == [
        ("ann", 7),
        ("bob", 7),
        ("cid", 2**53 - 1),
        ("dan", -(2**53 - 1)),
    ]
    assert await history.totals(BOARD, "2026-10") == [("ann", 100)]
    assert await history.totals("daily", PERIOD) == [("bob", 1000)]
    assert await history.totals(BOARD, "2026-09") == []
    await history.append([])


async def test_replayed_batch_is_skipped(history: SqlScoreHistory, history_url: str) -> None:
    batch = [event("ann", 10, "e1"), event("bob", 5, "e2"), event("ann", 1, "e3")]
    await history.append(batch)
    await history.append(batch)
    # Half replayed, half new; the same id in another period or board is another event.
    await history.append(
        [
            event("ann", 1, "e3"),
            event("bob", 2, "e4"),
            event("ann", 50, "e1", period="2026-10"),
            event("ann", 60, "e1", board="daily"),
        ]
    )
    assert sorted(await history.totals(BOARD, PERIOD)) == [("ann", 11), ("bob", 7)]
    assert await history.totals(BOARD, "2026-10") == [("ann", 50)]
    assert await history.totals("daily", PERIOD) == [("ann", 60)]
    assert await row_count(history_url) == 6


async def test_client_events(history: SqlScoreHistory) -> None:
    await history.append(
        [
            event("ann", 1, "client-1", client=True),
            event("ann", 1, "~generated", client=False),
            event("bob", -2, "client:2", client=True),
            event("bob", 3, "client-3", client=True, period="2026-10"),
            event("bob", 1, "client-4", client=True, board="daily"),
        ]
    )
    assert sorted(await history.client_events(BOARD, PERIOD)) == [
        ("ann", "client-1", 1),
        ("bob", "client:2", -2),
    ]
    assert await history.client_events(BOARD, "2026-10") == [("bob", "client-3", 3)]
    assert await history.client_events(BOARD, "2026-09") == []


async def test_writers_last_sequences(history: SqlScoreHistory) -> None:
    def of_writer(event: ScoreEvent, writer: str, sequence: int) -> ScoreEvent:
        return dataclasses.replace(event, writer_id=writer, sequence=sequence)

    await history.append(
        [
            of_writer(event("ann", 1, "~1"), "gs-1", 4),
            of_writer(event("bob", 1, "~2"), "gs-1", 2**53 - 1),
            of_writer(event("ann", 1, "~3"), "gs-2", 0),
            event("ann", 1, "~4"),
            of_writer(event("ann", 1, "~5", period="2026-10"), "gs-3", 9),
        ]
    )
    assert sorted(await history.writers(BOARD, PERIOD)) == [("gs-1", 2**53 - 1), ("gs-2", 0)]
    assert await history.writers(BOARD, "2026-10") == [("gs-3", 9)]
    assert await history.writers(BOARD, "2026-09") == []
    # Rows without a writer still count in the totals.
    assert sorted(await history.totals(BOARD, PERIOD)) == [("ann", 3), ("bob", 1)]


async def test_writers_come_from_writer_sequences_never_lowered(
    history: SqlScoreHistory, history_url: str
) -> None:
    def of_writer(event_id: str, sequence: int, *, period: str = PERIOD) -> ScoreEvent:
        return dataclasses.replace(
            event("ann", 1, event_id, period=period), writer_id="gs", sequence=sequence
        )

    flush = [of_writer("~1", 7), of_writer("~2", 7), of_writer("~3", 3, period="2026-12")]
    await history.append(flush)
    await history.append(flush)  # a retried flush
    await history.append([of_writer("~4", 5)])  # an older call landing late
    await history.append([event("bob", 1, "~5")])  # no writer
    assert await history.writers(BOARD, PERIOD) == [("gs", 7)]
    assert await history.writers(BOARD, "2026-12") == [("gs", 3)]
    # One row per (board, period, writer), read by key: not from the events, whose
    # writer columns stay as an audit trail.
    assert sorted(
        await query_history(
            history_url, "SELECT board, period, writer_id, sequence FROM writer_sequences"
        )
    ) == [(BOARD, PERIOD, "gs", 7), (BOARD, "2026-12", "gs", 3)]
    await query_history(history_url, "DELETE FROM score_events")
    assert await history.writers(BOARD, PERIOD) == [("gs", 7)]
    await history.append([of_writer("~6", 8)])
    assert await history.writers(BOARD, PERIOD) == [("gs", 8)]
    assert sorted(
        await query_history(
            history_url, "SELECT event_id, writer_id, writer_sequence FROM score_events"
        )
    ) == [("~6", "gs", 8)]


async def test_a_failed_writer_upsert_stores_none_of_the_flush(
    history: SqlScoreHistory, history_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The events and their writers' sequences commit together: a sequence is never stored
    # without its events (a retry would be refused with nothing applied) nor these without it.
    monkeypatch.setattr(
        mysql,
        "_writers_upsert",
        lambda count: "INSERT INTO no_such_table VALUES " + ",".join(["(%s,%s,%s,%s)"] * count),
    )

    async def failing(connection: object, rows: list[tuple[object, ...]]) -> None:
        await connection.execute("INSERT INTO no_such_table VALUES (1)")  # type: ignore[attr-defined]

    monkeypatch.setattr(SqliteDialect, "_upsert_writers", staticmethod(failing))
    many = [event("bob", 1, f"~b{index}") for index in range(3)]
    with pytest.raises(StoreUnavailable):
        await history.append(
            [*many, dataclasses.replace(event("ann", 1, "~1"), writer_id="gs", sequence=7)]
        )
    assert await row_count(history_url) == 0
    assert await history.writers(BOARD, PERIOD) == []
    # Without a writer there is no upsert to fail.
    await history.append(many)
    assert await row_count(history_url) == 3


async def test_client_events_of_the_window_buckets_still_checked(
    history: SqlScoreHistory,
) -> None:
    bucket = 20_000
    await history.append(
        [
            event("ann", 1, "before", client=True, id_life=bucket - 1),
            event("ann", 2, "at", client=True, id_life=bucket),
            event("bob", 3, "after", client=True, id_life=bucket + 1),
        ]
    )
    assert sorted(await history.client_events(BOARD, PERIOD, since_life=bucket)) == [
        ("ann", "at", 2),
        ("bob", "after", 3),
    ]
    assert len(await history.client_events(BOARD, PERIOD)) == 3


async def test_a_client_event_id_used_again_after_the_window_is_another_event(
    history: SqlScoreHistory, history_url: str
) -> None:
    # The live store forgets a client event id after the window (a day by default) and
    # applies its next use, recorded in a later bucket: the history keeps that row too,
    # and still skips a retried one (the same bucket).
    first = event("ann", 5, "again", client=True, id_life=20_000)
    later = event("ann", 5, "again", client=True, id_life=20_002)
    await history.append([first])
    await history.append([first, later])
    await history.append([later])
    assert await history.totals(BOARD, PERIOD) == [("ann", 10)]
    assert await row_count(history_url) == 2


async def test_migration_8_keeps_the_stored_events(
    history_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A database at version 7 with events, then upgraded: every row kept (SQLite copies
    # the table), each of life 0, and the new key in force.
    monkeypatch.setattr(schema_steps, "MIGRATIONS", schema_steps.MIGRATIONS[:7])
    old = SqlScoreHistory(history_url)
    await old.connect()
    await old.migrate()
    await old.close()
    assert await query_history(history_url, "SELECT version FROM schema_version") == [(7,)]
    await query_history(
        history_url,
        "INSERT INTO score_events (board, period, username, delta, event_id, "
        "client_event_id, created_at_ms, applied_at_us, presence) VALUES "
        f"('{BOARD}', '{PERIOD}', 'ann', 5, 'kept', 1, 1790000000000, NULL, 1), "
        f"('{BOARD}', '{PERIOD}', 'bob', 2, '~gen', 0, 1790000000000, NULL, NULL)",
    )
    monkeypatch.undo()
    history = SqlScoreHistory(history_url)
    await history.connect()
    try:
        await history.migrate()
        assert sorted(await history.totals(BOARD, PERIOD)) == [("ann", 5), ("bob", 2)]
        assert await history.client_events(BOARD, PERIOD) == [("ann", "kept", 5)]
        # A retried old row is still skipped... (life 0 is 1970's window: any old row's.)
        await history.append([event("bob", 2, "~gen")])
        assert await row_count(history_url) == 2
        assert await query_history(history_url, "SELECT DISTINCT id_life FROM score_events") == [
            (0,)
        ]
    finally:
        await history.close()


async def test_usernames_are_case_sensitive_and_unicode(history: SqlScoreHistory) -> None:
    names = [
        "alice",
        "Alice",
        "ALICE",
        "ålice",
        "Ålice",
        "alice\u0301",  # combining accent: other bytes, another player
        "\uff41lice",  # fullwidth a
        "\U0001d49clice",  # script capital A, outside the BMP: needs utf8mb4
        "李小龙",
        "a" * 64,
    ]
    await history.append([event(name, index + 1, f"e{index}") for index, name in enumerate(names)])
    assert sorted(await history.totals(BOARD, PERIOD)) == sorted(
        (name, index + 1) for index, name in enumerate(names)
    )


async def test_large_append(history: SqlScoreHistory, history_url: str) -> None:
    events = [event(f"player{number % 700}", number % 13, f"e{number}") for number in range(5000)]
    await history.append(events)
    expected: Counter[str] = Counter()
    for item in events:
        expected[item.username] += item.delta
    assert dict(await history.totals(BOARD, PERIOD)) == dict(expected)
    assert await row_count(history_url) == 5000


async def test_mysql_statement_split_when_over_the_packet_limit(
    mysql_database_url: str,
) -> None:
    # White box: pretend max_allowed_packet is tiny, so one batch needs many statements.
    store = SqlScoreHistory(mysql_database_url)
    await store.connect()
    await store.migrate()
    try:
        dialect = store._dialect
        assert isinstance(dialect, MySqlDialect)
        dialect.max_statement_bytes = 4_000
        events = [event(f"player{number}", 1, f"e{number}") for number in range(1000)]
        await store.append(events)
        await store.append(events)
        assert len(await store.totals(BOARD, PERIOD)) == 1000
    finally:
        await store.close()
    assert await row_count(mysql_database_url) == 1000


async def test_mysql_unreachable_is_store_unavailable() -> None:
    store = SqlScoreHistory(mysql_url("nothing", port=free_port()), timeout=5)
    with pytest.raises(StoreUnavailable):
        await store.connect()
    with pytest.raises(StoreUnavailable):
        await store.append([event("ann", 1, "e1")])
    with pytest.raises(StoreUnavailable):
        await store.ping()
    await store.close()


async def test_sqlite_unreachable_is_store_unavailable() -> None:
    store = SqlScoreHistory("sqlite+aiosqlite:////nonexistent-directory/leaderboard.db")
    await store.connect()
    with pytest.raises(StoreUnavailable):
        await store.ping()
    with pytest.raises(StoreUnavailable):
        await store.migrate()
    await store.close()
    # aiosqlite stops the worker thread of a failed connect without waiting for it;
    # let it finish before the test's event loop closes under it.
    for _ in range(500):
        if not any(
            thread.name.endswith("(_connection_worker_thread)") for thread in threading.enumerate()
        ):
            break
        await asyncio.sleep(0.01)


async def test_close_and_connect_again(history: SqlScoreHistory) -> None:
    await history.append([event("ann", 1, "e1")])
    await history.close()
    await history.close()
    with pytest.raises(StoreUnavailable):
        await history.totals(BOARD, PERIOD)
    await history.connect()
    await history.ping()
    assert await history.totals(BOARD, PERIOD) == [("ann", 1)]


def test_unknown_scheme() -> None:
    with pytest.raises(ValueError, match="postgresql"):
        SqlScoreHistory("postgresql://localhost/leaderboard")


class RecordingObserver:
    """Remembers every store call the history reports: (store, operation, failed)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, bool]] = []

    def observe_store(
        self, store: str, operation: str, seconds: float, *, failed: bool = False
    ) -> None:
        self.calls.append((store, operation, failed))


def test_a_read_replica_needs_mysql(mysql_database_url: str, sqlite_database_url: str) -> None:
    with pytest.raises(ValueError, match="read replica"):
        SqlScoreHistory(sqlite_database_url, read_url=mysql_database_url)
    with pytest.raises(ValueError, match="read replica"):
        SqlScoreHistory(mysql_database_url, read_url=sqlite_database_url)


async def test_read_url_equal_to_the_primary_is_no_replica(mysql_database_url: str) -> None:
    observer = RecordingObserver()
    store = SqlScoreHistory(mysql_database_url, read_url=mysql_database_url, observer=observer)
    await store.connect()
    try:
        await store.migrate()
        await store.append([event("ann", 1, "e1")])
        assert await store.totals(BOARD, PERIOD) == [("ann", 1)]
        assert await store.replica_status() is None
    finally:
        await store.close()
    # No GTID lookup, no wait: the read went straight to the primary.
    assert [call[:2] for call in observer.calls] == [
        ("history", "migrate"),
        ("history", "append"),
        ("history", "totals"),
    ]


async def test_unreachable_replica_is_skipped_and_reported(
    mysql_database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    observer = RecordingObserver()
    store = SqlScoreHistory(
        mysql_database_url,
        read_url=mysql_url("nothing", port=free_port()),
        observer=observer,
        replica_wait_seconds=1.0,
        replica_retry_seconds=60.0,
    )
    # Starts and writes although the replica is down.
    await store.connect()
    try:
        await store.migrate()
        await store.append([event("ann", 5, "e1", client=True)])
        assert observer.calls[0] == ("history-replica", "ping", True)
        warnings = [record for record in caplog.records if record.levelname == "WARNING"]
        assert len(warnings) == 1
        assert "reads use the primary for the next 60 s" in warnings[0].getMessage()
        observer.calls.clear()
        assert await store.totals(BOARD, PERIOD) == [("ann", 5)]
        assert await store.client_events(BOARD, PERIOD) == [("ann", "e1", 5)]
        # Skipped without another try while the retry interval runs.
        assert observer.calls == [("history", "totals", False), ("history", "client_events", False)]
        status = await store.replica_status()
        assert (status or "").startswith("unavailable: history-replica ping")
    finally:
        await store.close()
