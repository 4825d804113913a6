"""The event archive (store/event_archive.py, store/sql/archive.py) on MariaDB and SQLite:
exactly the rows of final periods that ended before the cutoff move, each row in exactly
one table; a rerun moves nothing; an interrupted run resumes; the rebuild reads and a
player's reads answer the same from archived rows; erasure reaches them; retention deletes
only final periods that ended long enough ago."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections import Counter
from datetime import UTC, date, datetime

import pytest

from store.board_kinds import SortOrder, TieBreak
from store.boards import Board, ResetPeriod
from store.event_archive import ArchiveReport, Progress, archive_events, cutoff_date
from store.models import REMOVAL_ID_PREFIX, ScoreEvent
from store.sql import SqlScoreHistory
from store.sql.frozen_rows import FrozenRow, ranked
from tests.support.history_database import (
    history_epoch,
    query_history,
    registered_players,
    unregistered_rows,
)

pytestmark = pytest.mark.integration

NOW = datetime(2026, 12, 5, 12, tzinfo=UTC)
MONTHLY = Board(id="m", reset=ResetPeriod.MONTHLY)
FOREVER = Board(id="n", reset=ResetPeriod.NEVER)
# Its days end at 05:00 UTC: a cutoff is the local start of the period named.
DAILY_NY = Board(id="d", reset=ResetPeriod.DAILY, time_zone="America/New_York")
BOARDS = (MONTHLY, FOREVER, DAILY_NY)
# m: 2026-08 ended and never frozen (pending), 2026-09 and 2026-10 final, 2026-11 ended
# and pending, 2026-12 live. d: two final days around the cutoff 2026-12 (local).
FINAL = [("m", "2026-09"), ("m", "2026-10"), ("d", "2026-11-30"), ("d", "2026-12-01")]
PERIODS = [("m", "2026-08"), *FINAL, ("m", "2026-11"), ("m", "2026-12"), ("n", "all")]
COLUMNS = (
    "id, board, period, username, delta, event_id, client_event_id, created_at_ms, "
    "applied_at_us, presence, id_life"
)


def events(board: str, period: str) -> list[ScoreEvent]:
    """Eight rows of three players (client ids, a removal of ann, ann again after it, and
    bob's client id used again after the idempotency window: its second life)."""
    rows = [
        ("ann", 5, "c-1", True, 1, 0),
        ("bob", 7, "c-2", True, 1, 0),
        ("ann", 2, "~g1", False, 0, 0),
        ("Cé", 3, "~g2", False, 1, 0),
        ("ann", -7, REMOVAL_ID_PREFIX + "r1", False, -1, 0),
        ("ann", 4, "c-3", True, 1, 0),
        ("bob", 1, "~g3", False, 0, 0),
        ("bob", 2, "c-2", True, 0, 1),
    ]
    return [
        ScoreEvent(
            board=board,
            period=period,
            username=name,
            delta=delta,
            event_id=event_id,
            client_event_id=client,
            created_at_ms=1_790_000_000_000 + index,
            applied_at_us=1_000 + index if board == "d" else None,
            presence=presence,
            id_life=life,
        )
        for index, (name, delta, event_id, client, presence, life) in enumerate(rows)
    ]


async def rows(url: str, table: str) -> Counter[tuple[object, ...]]:
    """Every row of an event table, as a multiset (so a row twice would show)."""
    found = await query_history(url, f"SELECT {COLUMNS} FROM {table}")
    return Counter(tuple(int(v) if isinstance(v, bool) else v for v in row) for row in found)


def periods_of(table_rows: Counter[tuple[object, ...]]) -> set[tuple[object, object]]:
    """The (board, period) pairs with rows."""
    return {(row[1], row[2]) for row in table_rows}


async def filled(history: SqlScoreHistory) -> None:
    """Every period's events stored; the FINAL periods frozen from them."""
    for board, period in PERIODS:
        await history.append(events(board, period))
    standings = history.standings()
    for board, period in FINAL:
        totals = await history.totals(board, period)
        await standings.freeze(board, period, ranked_rows(totals), now_ms=1, delivery_id=None)


def ranked_rows(totals: list[tuple[str, int]]) -> list[FrozenRow]:
    """Standings rows of a DESC, SHARED board."""
    return ranked(SortOrder.DESC, TieBreak.SHARED, totals, {})


async def run(
    history: SqlScoreHistory,
    *,
    before: str | None = "2026-12",
    retention_days: int | None = None,
    batch_rows: int = 3,
    progress: Progress | None = None,
    compact: bool = False,
) -> ArchiveReport:
    """One archive run at NOW over BOARDS."""
    return await archive_events(
        history.archive(),
        history.standings(),
        BOARDS,
        now=NOW,
        before=None if before is None else cutoff_date(before),
        retention_days=retention_days,
        batch_rows=batch_rows,
        progress=progress or (lambda what, board, period, count: None),
        compact=compact,
    )


async def reads(history: SqlScoreHistory) -> dict[str, object]:
    """Everything read from raw events: a rebuild's reads of every period, a player's."""
    found: dict[str, object] = {}
    for board, period in PERIODS:
        found[f"totals {board} {period}"] = sorted(await history.totals(board, period))
        found[f"ids {board} {period}"] = sorted(await history.client_events(board, period))
        found[f"writes {board} {period}"] = await history.writes(board, period)
    records = history.player_records()
    for name in ("ann", "bob", "Cé"):
        found[f"periods {name}"] = sorted(
            await records.periods(name), key=lambda entry: (entry.board, entry.period)
        )
        found[f"writes {name}"] = await records.writes(name)
        found[f"ids {name}"] = sorted(await records.client_event_ids(name))
    return found


async def test_archive_moves_exactly_final_periods_before_the_cutoff(
    history: SqlScoreHistory, history_url: str
) -> None:
    await filled(history)
    before = await rows(history_url, "score_events")
    answers = await reads(history)
    top = await history.standings().top("m", "2026-10", 10, 0)

    report = await run(history)

    hot, cold = (
        await rows(history_url, "score_events"),
        await rows(history_url, "score_events_archive"),
    )
    moved = {("m", "2026-09"), ("m", "2026-10"), ("d", "2026-11-30")}
    assert periods_of(cold) == moved
    assert periods_of(hot) == {pair for pair in PERIODS if pair not in moved}
    assert hot + cold == before  # each row in exactly one table
    assert not set(hot) & set(cold)
    assert report.archived == {pair: 8 for pair in moved}
    assert report.pending == [("m", "2026-08"), ("m", "2026-11")]
    assert report.deleted == {}
    # The rebuild's reads, a player's reads and the frozen standings answer the same.
    assert await reads(history) == answers
    assert await history.standings().top("m", "2026-10", 10, 0) == top

    # A rerun moves nothing.
    again = await run(history)
    assert again.archived == {}
    assert await rows(history_url, "score_events") == hot
    assert await rows(history_url, "score_events_archive") == cold


class Interrupted(Exception):
    """Raised by the test's progress callback to stop a run between two batches."""


async def test_an_interrupted_run_resumes(history: SqlScoreHistory, history_url: str) -> None:
    await filled(history)
    before = await rows(history_url, "score_events")
    answers = await reads(history)
    batches = 0

    def stop_after_two(what: str, board: str, period: str, count: int) -> None:
        nonlocal batches
        batches += 1
        if batches == 2:
            raise Interrupted

    with pytest.raises(Interrupted):
        await run(history, progress=stop_after_two)
    hot, cold = (
        await rows(history_url, "score_events"),
        await rows(history_url, "score_events_archive"),
    )
    # Two batches of 3 event ids; c-2's two lives (rows) move together.
    assert sum(cold.values()) == 7
    assert hot + cold == before
    assert await reads(history) == answers  # a period half moved reads whole

    await run(history)
    hot, cold = (
        await rows(history_url, "score_events"),
        await rows(history_url, "score_events_archive"),
    )
    assert hot + cold == before
    assert sum(cold.values()) == 24  # 3 final periods of 8 rows


async def test_cancelled_mid_batch_leaves_each_row_in_one_table(
    history: SqlScoreHistory, history_url: str
) -> None:
    await filled(history)
    before = await rows(history_url, "score_events")
    # Cancelled at many points, inside transactions too: the open batch rolls back.
    for step in range(30):
        delay = 0.002 * step
        task = asyncio.create_task(run(history, batch_rows=1))
        await asyncio.sleep(delay)
        task.cancel()  # a run that finished already (later steps) is left as it is
        with contextlib.suppress(asyncio.CancelledError):
            await task
        hot = await rows(history_url, "score_events")
        cold = await rows(history_url, "score_events_archive")
        assert hot + cold == before
    await run(history)
    assert (
        sum((await rows(history_url, "score_events_archive")).values()) == 24
    )  # 3 final periods of 8 rows


async def test_concurrent_runs_move_each_row_once(
    history: SqlScoreHistory, history_url: str
) -> None:
    await filled(history)
    before = await rows(history_url, "score_events")
    reports = await asyncio.gather(*(run(history, batch_rows=2) for _ in range(3)))
    hot, cold = (
        await rows(history_url, "score_events"),
        await rows(history_url, "score_events_archive"),
    )
    assert hot + cold == before
    assert (
        sum(sum(report.archived.values()) for report in reports) == 24
    )  # 3 final periods of 8 rows


async def test_erasure_reaches_archived_rows(history: SqlScoreHistory, history_url: str) -> None:
    await filled(history)
    await run(history)
    erased = await history.player_records().erase("ann")
    assert erased.events == 4 * len(PERIODS)  # in both tables
    for table in ("score_events", "score_events_archive"):
        assert all(row[3] != "ann" for row in await rows(history_url, table))
    assert await history.player_records().periods("ann") == []


async def test_archive_and_retention_forget_the_periods_writer_sequences(
    history: SqlScoreHistory, history_url: str
) -> None:
    # Idempotency per writer: a final period takes no more writer calls (they land in the
    # current period), so its writer_sequences rows go with its events; the others stay.
    await history.append(
        [
            dataclasses.replace(
                events(board, period)[0],
                event_id=f"~w-{board}-{period}",
                writer_id="gs",
                sequence=5,
            )
            for board, period in PERIODS
        ]
    )
    await filled(history)

    async def with_writers() -> set[tuple[object, ...]]:
        found = await query_history(history_url, "SELECT board, period FROM writer_sequences")
        return {tuple(row) for row in found}

    assert await with_writers() == set(PERIODS)
    await run(history)
    moved = {("m", "2026-09"), ("m", "2026-10"), ("d", "2026-11-30")}
    assert await with_writers() == set(PERIODS) - moved
    assert await history.writers("m", "2026-09") == []
    assert await history.writers("m", "2026-12") == [("gs", 5)]
    await run(history, before=None, retention_days=1)
    assert await with_writers() == {
        ("m", "2026-08"),
        ("m", "2026-11"),
        ("m", "2026-12"),
        ("n", "all"),
    }


async def test_archive_and_retention_keep_the_player_registry_consistent(
    history: SqlScoreHistory, history_url: str
) -> None:
    # Migration 11: the registry lists the hot table's (player, board, period) triples. A
    # period whose rows all left it (moved or purged) leaves the registry too, bumping
    # the epoch, so a flush that still writes into it (a retried event) registers again.
    await filled(history)
    players = ("ann", "bob", "Cé")

    def listed(periods: set[tuple[str, str]]) -> set[tuple[object, ...]]:
        return {(name, board, period) for board, period in periods for name in players}

    assert await registered_players(history_url) == listed(set(PERIODS))
    epoch = await history_epoch(history_url)
    await run(history)
    moved = {("m", "2026-09"), ("m", "2026-10"), ("d", "2026-11-30")}
    assert await registered_players(history_url) == listed(set(PERIODS) - moved)
    assert await history_epoch(history_url) > epoch
    # A retried event lands in an archived period: this instance's cache knew ann there.
    await history.append([dataclasses.replace(events("m", "2026-10")[2], event_id="~late")])
    assert await unregistered_rows(history_url) == []
    assert ("ann", "m", "2026-10") in await registered_players(history_url)
    await run(history, before=None, retention_days=1)
    purged = {("m", "2026-09"), ("m", "2026-10"), ("d", "2026-11-30"), ("d", "2026-12-01")}
    assert await registered_players(history_url) == listed(set(PERIODS) - purged)
    assert await unregistered_rows(history_url) == []
    # Erasure still finds every row left, in both tables.
    erased = await history.player_records().erase("ann")
    assert erased.events == 4 * len(set(PERIODS) - purged)
    assert all(row[3] != "ann" for row in await rows(history_url, "score_events"))


async def test_retention_deletes_only_final_periods_ended_long_enough_ago(
    history: SqlScoreHistory, history_url: str
) -> None:
    await filled(history)
    await run(history)  # m/2026-09 and 2026-10 archived, d/2026-11-30 too
    # 40 days before NOW is 2026-10-26: m/2026-09 (ended 10-01) goes, from the archive;
    # m/2026-08 ended earlier but is pending, m/2026-10 ended after: both stay.
    report = await run(history, before=None, retention_days=40)
    assert report.deleted == {("m", "2026-09"): 8}
    assert report.pending == [("m", "2026-08")]
    hot, cold = (
        await rows(history_url, "score_events"),
        await rows(history_url, "score_events_archive"),
    )
    assert ("m", "2026-09") not in periods_of(hot) | periods_of(cold)
    assert ("m", "2026-08") in periods_of(hot)
    assert periods_of(cold) == {("m", "2026-10"), ("d", "2026-11-30")}
    # Its standings still answer.
    assert [player.username for player in await history.standings().top("m", "2026-09", 5, 0)]

    # Retention of 1 day: every final period that ended by 12-04 goes, from either table;
    # the live month, the pending ones and the never-ending board stay.
    report = await run(history, before=None, retention_days=1)
    hot, cold = (
        await rows(history_url, "score_events"),
        await rows(history_url, "score_events_archive"),
    )
    assert cold == Counter()
    assert periods_of(hot) == {("m", "2026-08"), ("m", "2026-11"), ("m", "2026-12"), ("n", "all")}
    assert set(report.deleted) == {("m", "2026-10"), ("d", "2026-11-30"), ("d", "2026-12-01")}


async def hot_table_id(url: str) -> object:
    """InnoDB's id of `score_events` (a new one after every rebuild); None on SQLite."""
    if url.startswith("sqlite"):
        return None
    found = await query_history(
        url,
        "SELECT table_id FROM information_schema.innodb_sys_tables "
        "WHERE name = CONCAT(DATABASE(), '/score_events')",
    )
    return found[0][0]


async def test_compact_rebuilds_the_hot_table_only_when_rows_left_it(
    history: SqlScoreHistory, history_url: str
) -> None:
    await filled(history)
    answers = await reads(history)
    first = await hot_table_id(history_url)

    report = await run(history, compact=True)

    mysql = not history_url.startswith("sqlite")
    assert report.archived  # rows left the hot table
    assert report.compacted is mysql  # SQLite: never (VACUUM would rewrite the archive too)
    rebuilt = await hot_table_id(history_url)
    assert (rebuilt != first) is mysql
    assert await reads(history) == answers  # the same rows, the same answers
    # Nothing left to move: no second rebuild; and none unless asked.
    assert not (await run(history, compact=True)).compacted
    assert await hot_table_id(history_url) == rebuilt
    report = await run(history, before=None, retention_days=1)
    assert report.deleted
    assert not report.compacted
    assert await hot_table_id(history_url) == rebuilt


def test_cutoff_dates() -> None:
    assert cutoff_date("2026-12") == date(2026, 12, 1)
    assert cutoff_date("2026-W49") == date(2026, 11, 30)
    assert cutoff_date("2026-12-05") == date(2026, 12, 5)
    for bad in ("all", "2026-13", "2026-W54", "12-2026", ""):
        with pytest.raises(ValueError, match="not a period id"):
            cutoff_date(bad)
