"""`leaderboard archive` as an operator runs it, on MariaDB and on SQLite: final periods of
years ago move (declared boards and boards created at run time), the live and a pending
period stay, a rerun moves nothing, retention deletes, `--compact` rebuilds the hot table
(MySQL), bad arguments change nothing."""

from __future__ import annotations

import pytest

from store.board_kinds import SortOrder, TieBreak
from store.models import ScoreEvent
from store.sql import SqlScoreHistory
from store.sql.frozen_rows import ranked
from tests.support.cli import leaderboard
from tests.support.history_database import query_history

pytestmark = pytest.mark.integration

BOARDS = "global:monthly,arena:daily,forever:never"
FINAL = [("global", "2020-01"), ("arena", "2020-01-05")]
PENDING = ("global", "2020-02")


def events(board: str, period: str, count: int) -> list[ScoreEvent]:
    """`count` generated events of three players."""
    return [
        ScoreEvent(
            board=board,
            period=period,
            username=f"p{index % 3}",
            delta=index + 1,
            event_id=f"~{index:04x}",
            client_event_id=False,
            created_at_ms=1_580_000_000_000,
        )
        for index in range(count)
    ]


async def counts(url: str) -> dict[str, dict[tuple[str, str], int]]:
    """Rows per (board, period) in each table."""
    found: dict[str, dict[tuple[str, str], int]] = {}
    for table in ("score_events", "score_events_archive"):
        rows = await query_history(
            url,
            f"SELECT board, period, COUNT(*) FROM {table} GROUP BY board, period",
        )
        found[table] = {(str(b), str(p)): int(str(n)) for b, p, n in rows}
    return found


@pytest.fixture
async def filled(history_url: str) -> str:
    """A history with two final periods of 5 events, a pending one, a live one, `all`."""
    history = SqlScoreHistory(history_url)
    await history.connect()
    await history.migrate()
    try:
        for board, period in [*FINAL, PENDING, ("forever", "all"), ("global", "2999-01")]:
            await history.append(events(board, period, 5))
        for board, period in FINAL:
            rows = ranked(SortOrder.DESC, TieBreak.SHARED, await history.totals(board, period), {})
            await history.standings().freeze(board, period, rows, now_ms=1, delivery_id=None)
    finally:
        await history.close()
    return history_url


async def test_archive_moves_final_periods_and_reruns_as_a_no_op(filled: str) -> None:
    environment = {"LEADERBOARD_DATABASE_URL": filled, "LEADERBOARD_BOARDS": BOARDS}
    code, output = await leaderboard(
        environment, "archive", "--before", "2021-01", "--batch-rows", "2", "--compact"
    )
    assert code == 0, output
    # MySQL: the hot table rebuilt once its old rows left; SQLite never (docs/history.md).
    assert ("score_events rebuilt (compacted)" in output) is filled.startswith("mysql")
    assert "global/2020-01: 5 events archived" in output
    assert "arena/2020-01-05: 5 events archived" in output
    assert "global/2020-02: left in place, its result is still pending" in output
    tables = await counts(filled)
    assert tables["score_events_archive"] == {pair: 5 for pair in FINAL}
    assert tables["score_events"] == {
        PENDING: 5,
        ("forever", "all"): 5,
        ("global", "2999-01"): 5,
    }

    code, output = await leaderboard(environment, "archive", "--before", "2021-01")
    assert code == 0, output
    assert "0 events archived, 0 deleted" in output
    assert await counts(filled) == tables

    # Retention (a year ago is long past 2020): the final periods go from the archive.
    environment["LEADERBOARD_EVENT_RETENTION_DAYS"] = "365"
    code, output = await leaderboard(environment, "archive")
    assert code == 0, output
    assert "global/2020-01: 5 events deleted (retention)" in output
    assert await counts(filled) == {
        "score_events": tables["score_events"],
        "score_events_archive": {},
    }


async def test_bad_arguments_change_nothing(filled: str) -> None:
    environment = {"LEADERBOARD_DATABASE_URL": filled, "LEADERBOARD_BOARDS": BOARDS}
    before = await counts(filled)
    for arguments in (("--before", "all"), ("--before", "2020-13"), ("--batch-rows", "0")):
        code, output = await leaderboard(environment, "archive", *arguments)
        assert code == 2, output
        assert "error:" in output
    code, output = await leaderboard(environment, "archive")
    assert code == 0
    assert "nothing to do" in output
    assert await counts(filled) == before
