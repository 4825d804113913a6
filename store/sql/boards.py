"""The `boards` table: every board's spec, the source of truth each instance loads.

Created by migration 2. Each statement is one atomic statement (MySQL autocommit; SQLite
in an IMMEDIATE transaction), so concurrent instances never half-create a board.

Creations are serialized: the insert counts the boards and inserts in one statement, which
keeps `LEADERBOARD_MAX_BOARDS` on its own, but on MySQL/MariaDB two such statements at
once take shared locks on the rows counted and then each waits for the other's to insert:
a deadlock, one creation refused with error 1213 while there was room (measured: 49 of 600
concurrent creations in 15 rounds). A named lock of the database (GET_LOCK) around the
statement makes them take turns; SQLite's BEGIN IMMEDIATE already does.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar

import aiomysql

from store.board_model import BoardSpec, SortOrder, TieBreak, UpdateRule
from store.boards import ResetPeriod
from store.errors import StoreUnavailable
from store.sql.dialect import Dialect, Row

T = TypeVar("T")

Runner = Callable[[str, Callable[[Any], Awaitable[T]]], Awaitable[T]]

COLUMNS: Final = (
    "id, reset, update_rule, sort_order, tie_break, time_zone, "
    "min_score, max_score, max_delta, shards, active, version"
)

_DUPLICATE_KEY_ERRORS = (aiomysql.IntegrityError, sqlite3.IntegrityError)
_CREATE_LOCK: Final = "CONCAT('leaderboard-boards:', LEFT(DATABASE(), 40))"
_CREATE_LOCK_SECONDS: Final = 10


class BoardExists(Exception):
    """A board with that id is already stored."""


class TooManyBoards(Exception):
    """The table holds the most boards allowed."""


def spec_of(row: Row) -> tuple[BoardSpec, int]:
    """A stored row as a spec, with its version."""
    (id_, reset, rule, order, ties, zone, low, high, delta, shards, active, version) = row
    spec = BoardSpec(
        id=str(id_),
        reset=ResetPeriod(reset),
        update_rule=UpdateRule(rule),
        sort_order=SortOrder(order),
        tie_break=TieBreak(ties),
        time_zone=str(zone),
        min_score=None if low is None else int(low),
        max_score=None if high is None else int(high),
        max_delta=None if delta is None else int(delta),
        shards=int(shards),
        active=bool(active),
    )
    return spec, int(version)


class SqlBoardTable:
    """Reads and changes of the `boards` table, run on the history's connection pool."""

    def __init__(self, dialect: Dialect, run: Runner[Any], *, sqlite: bool) -> None:
        self._dialect = dialect
        self._run = run
        self._sqlite = sqlite
        p = dialect.placeholder
        self._select_all = f"SELECT {COLUMNS} FROM boards"  # noqa: S608
        self._select_one = f"SELECT {COLUMNS} FROM boards WHERE id = {p}"  # noqa: S608
        # The count and the insert in one statement: the bound holds without a lock dance.
        self._insert = (
            f"INSERT INTO boards ({COLUMNS}, created_at_ms) "  # noqa: S608
            f"SELECT {', '.join([p] * 13)} "
            f"FROM (SELECT COUNT(*) AS n FROM boards) AS counted WHERE counted.n < {p}"
        )
        # Only the driver's placeholder is spliced in; values are bound parameters.
        self._update_caps = (
            f"UPDATE boards SET min_score = {p}, max_score = {p}, max_delta = {p}, "  # noqa: S608
            f"version = version + 1 WHERE id = {p}"
        )
        self._archive = f"UPDATE boards SET active = 0, version = version + 1 WHERE id = {p}"  # noqa: S608

    async def all(self) -> list[tuple[BoardSpec, int]]:
        """Every stored board with its version."""

        async def query(connection: Any) -> list[Row]:
            return await self._dialect.fetch(connection, self._select_all)

        return [spec_of(row) for row in await self._run("boards_all", query)]

    async def get(self, board_id: str) -> tuple[BoardSpec, int] | None:
        """One stored board with its version, or None."""

        async def query(connection: Any) -> list[Row]:
            return await self._dialect.fetch(connection, self._select_one, (board_id,))

        rows = await self._run("boards_get", query)
        return spec_of(rows[0]) if rows else None

    async def insert(self, spec: BoardSpec, *, max_boards: int | None) -> None:
        """Store a new board; `BoardExists`, or `TooManyBoards` past `max_boards` (None: none)."""
        parameters = (
            spec.id,
            spec.reset.value,
            spec.update_rule.value,
            spec.sort_order.value,
            spec.tie_break.value,
            spec.time_zone,
            spec.min_score,
            spec.max_score,
            spec.max_delta,
            spec.shards,
            spec.active,
            1,
            int(time.time() * 1000),
            2**62 if max_boards is None else max_boards,
        )

        async def statement(connection: Any) -> int:
            try:
                if self._sqlite:
                    return await self._changing(connection, self._insert, parameters)
                return await self._one_at_a_time(connection, self._insert, parameters)
            except _DUPLICATE_KEY_ERRORS:
                raise BoardExists(spec.id) from None

        if await self._run("boards_insert", statement) == 0:
            raise TooManyBoards(spec.id)

    async def update_caps(
        self, board_id: str, min_score: int | None, max_score: int | None, max_delta: int | None
    ) -> bool:
        """Set a board's caps; False when there is no such board."""

        async def statement(connection: Any) -> int:
            return await self._changing(
                connection, self._update_caps, (min_score, max_score, max_delta, board_id)
            )

        return bool(await self._run("boards_update", statement) > 0)

    async def archive(self, board_id: str) -> bool:
        """Mark a board archived; False when there is no such board."""

        async def statement(connection: Any) -> int:
            return await self._changing(connection, self._archive, (board_id,))

        return bool(await self._run("boards_archive", statement) > 0)

    async def _one_at_a_time(
        self, connection: Any, statement: str, parameters: tuple[Any, ...]
    ) -> int:
        """`_changing` under the database's named creation lock (MySQL; module doc)."""
        rows = await self._dialect.fetch(
            connection, f"SELECT GET_LOCK({_CREATE_LOCK}, %s)", (_CREATE_LOCK_SECONDS,)
        )
        if not rows or rows[0][0] != 1:
            # Nothing stored: UNAVAILABLE, the client may retry.
            raise StoreUnavailable("timed out waiting for another board creation")
        try:
            return await self._changing(connection, statement, parameters)
        finally:
            await self._dialect.execute(connection, f"DO RELEASE_LOCK({_CREATE_LOCK})")

    async def _changing(self, connection: Any, statement: str, parameters: tuple[Any, ...]) -> int:
        """Run one changing statement, committed; the number of rows it matched."""
        if self._sqlite:
            await connection.execute("BEGIN IMMEDIATE")
            try:
                cursor = await connection.execute(statement, parameters)
                await connection.execute("COMMIT")
            except BaseException:
                await connection.execute("ROLLBACK")
                raise
            return int(cursor.rowcount)
        async with connection.cursor() as cursor:
            # MySQL counts matched rows only with CLIENT.FOUND_ROWS; an UPDATE always bumps
            # `version`, so a matched row is a changed row here.
            return int(await cursor.execute(statement, parameters))
