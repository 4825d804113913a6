"""store/sql/standings.py + final_reads.py on MariaDB and SQLite: standings frozen from rows
of every order and tie-break read back whole; a cursor page starts right after the cursor's
place in the board's order, whether the place is a frozen player's (one lookup) or not (a
forged or stale cursor: counted), as the live stores' `page` does."""

from __future__ import annotations

import bisect
from collections.abc import AsyncIterator

import pytest

from store.board_kinds import SortOrder, TieBreak
from store.sql import SqlScoreHistory
from store.sql.frozen_rows import order_key, ranked
from store.sql.standings import SqlStandings

pytestmark = pytest.mark.integration

SCORES = [("a", 5), ("Bob", 7), ("bob", 5), ("é", 2), ("z", 5), ("y", 9)]
INSTANTS = {"a": 30, "Bob": 10, "bob": 20, "é": 40, "z": 15, "y": 5}


@pytest.fixture(params=["mysql", "sqlite"])
def history_url(request: pytest.FixtureRequest) -> str:
    """A fresh history database of each kind."""
    fixture = "mysql_database_url" if request.param == "mysql" else "sqlite_database_url"
    return str(request.getfixturevalue(fixture))


@pytest.fixture
async def standings(history_url: str) -> AsyncIterator[SqlStandings]:
    history = SqlScoreHistory(history_url)
    await history.connect()
    await history.migrate()
    try:
        yield history.standings()
    finally:
        await history.close()


@pytest.mark.parametrize("order", list(SortOrder))
@pytest.mark.parametrize("tie", list(TieBreak))
async def test_pages_after_any_place_follow_the_order(
    standings: SqlStandings, order: SortOrder, tie: TieBreak
) -> None:
    rows = ranked(order, tie, SCORES, INSTANTS)
    result = await standings.freeze("b", "p", rows, now_ms=1, delivery_id=None)
    assert result is not None
    assert [(p.username, p.score, p.rank) for p in result.top] == [
        (row.username, row.score, row.rank) for row in rows
    ]
    keys = [order_key(order, tie, row) for row in rows]
    whole = await standings.page("b", "p", 100, None, order=order, tie_break=tie)
    assert list(whole.keys) == keys
    assert [p.username for p in whole.players] == [row.username for row in rows]
    assert not whole.has_next
    # Every player's own place, and places no one holds (between and around them).
    places = list(keys)
    for stored, member in keys:
        places += [(stored, member + "~"), (stored - 1, member), (stored + 1, member)]
    places += [(stored, "") for stored, _ in keys] + [(-100, "x"), (100, "x")]
    for place in places:
        start = bisect.bisect_right(sorted_keys(keys, tie), parsed(place, tie))
        page = await standings.page("b", "p", 2, place, order=order, tie_break=tie)
        assert [p.username for p in page.players] == [
            row.username for row in rows[start : start + 2]
        ]
        assert page.has_next is (start + 2 < len(rows))
        assert page.total == len(rows)


def parsed(key: tuple[int, str], tie: TieBreak) -> tuple[int, int, str]:
    """A key as the embedded store compares it (store/embedded_rankings.py)."""
    stored, member = key
    if tie is TieBreak.EARLIEST:
        try:
            return stored, int(member[:16], 16), member[16:]
        except ValueError:
            pass
    return stored, 0, member


def sorted_keys(keys: list[tuple[int, str]], tie: TieBreak) -> list[tuple[int, int, str]]:
    return [parsed(key, tie) for key in keys]
