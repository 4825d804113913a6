"""The boards table under concurrent creations: `LEADERBOARD_MAX_BOARDS` is never passed,
however many instances create boards at once (real MariaDB and SQLite)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from store.board_model import BoardSpec
from store.sql import SqlScoreHistory
from store.sql.boards import BoardExists, TooManyBoards

pytestmark = pytest.mark.integration

INSTANCES = 8
CREATES_EACH = 5
CAP = 5
ROUNDS = 6


@pytest.fixture(params=["mysql", "sqlite"])
def history_url(request: pytest.FixtureRequest) -> str:
    """A URL of an empty history database, on each backend."""
    fixture = "mysql_database_url" if request.param == "mysql" else "sqlite_database_url"
    return str(request.getfixturevalue(fixture))


@pytest.fixture
async def histories(history_url: str) -> AsyncIterator[list[SqlScoreHistory]]:
    """Several histories on one empty database: instances, each with its own pool."""
    url = history_url
    opened: list[SqlScoreHistory] = []
    try:
        for _ in range(INSTANCES):
            history = SqlScoreHistory(url)
            await history.connect()
            opened.append(history)
        await opened[0].migrate()
        yield opened
    finally:
        for history in opened:
            await history.close()


async def test_concurrent_creations_fill_the_table_exactly(
    histories: list[SqlScoreHistory],
) -> None:
    # Each round raises the cap by CAP: exactly CAP creations of the round succeed, the
    # others are refused as too many, none fails (on MariaDB two counting inserts at once
    # deadlocked: error 1213, a creation lost while there was room).
    tables = [history.board_table() for history in histories]
    await tables[0].insert(BoardSpec("already-there"), max_boards=None)
    for round_number in range(1, ROUNDS + 1):
        cap = 1 + CAP * round_number

        async def create(
            table_number: int, number: int, cap: int = cap, round_number: int = round_number
        ) -> bool:
            try:
                await tables[table_number].insert(
                    BoardSpec(f"r{round_number}-{table_number}-{number}"), max_boards=cap
                )
            except TooManyBoards:
                return False
            return True

        results = await asyncio.gather(
            *(create(t, n) for t in range(INSTANCES) for n in range(CREATES_EACH))
        )
        assert sum(results) == CAP, round_number
        assert len(await tables[0].all()) == cap
    with pytest.raises(BoardExists):
        await tables[1].insert(BoardSpec("already-there"), max_boards=None)
