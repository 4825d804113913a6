"""Frozen final standings of ended periods, their results, and the finalizer's bookkeeping.

Created by migrations 6 and 7 (docs/seasons.md):

- `period_standings`: one row per player of a final period, with its `position` in the
  board's order (1..N, unique), its `player_rank` (competition ranks on SHARED boards, the
  position on EARLIEST ones) and, on EARLIEST boards, `reached_us`; primary key
  (board, period, position), unique (board, period, username). Past-period reads are
  index lookups: a top page is a position range, a player one unique-key lookup, a
  neighbourhood the position range around it. As fast after 10M events as after 10.
- `period_results`: the `PeriodResult` of each final period (its JSON, see
  `store.period_codec`); the primary key (board, period) makes the result exist once.
- `period_claims`: which instance computes a period's result, with a lease.
- `instance_watermarks`: per instance, "every event I acknowledged before
  `flushed_through_ms` is in this database", and when it last said so.

`freeze` runs in one transaction: the result row first (a second instance racing past
an expired lease meets the primary key and rolls back), the standings rows (folded by the
caller exactly as a rebuild folds the history, put in the board's order by
`store.sql.frozen_rows.ranked`) in multi-row INSERTs, the top, and the webhook's outbox
row. The reads of final periods are `store.sql.final_reads.FinalReads`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final, TypeVar

import aiomysql

from store.models import PeriodResult, RankedPlayer
from store.period_codec import decode, encode
from store.sql.dialect import Dialect, periods_in, write_transaction
from store.sql.final_reads import FinalReads
from store.sql.frozen_rows import FrozenRow
from store.sql.outbox import INSERT_OUTBOX

T = TypeVar("T")

Runner = Callable[[str, Callable[[Any], Awaitable[T]]], Awaitable[T]]

RESULT_TOP_SIZE: Final = 100
"""How many players a `PeriodResult` lists (the contract: up to 100)."""

_DUPLICATE_KEY_ERRORS = (aiomysql.IntegrityError, sqlite3.IntegrityError)


class SqlStandings(FinalReads):
    """The standings, results, claims and watermarks tables, on the history's primary."""

    def __init__(
        self, dialect: Dialect, run: Runner[Any], run_unbounded: Runner[Any], *, sqlite: bool
    ) -> None:
        super().__init__(dialect, run)
        self._run_unbounded = run_unbounded
        self._sqlite = sqlite
        # Rows per INSERT: within SQLite's 999 bound parameters (7 a row), and a packet of
        # at most a few hundred kB on MySQL.
        self._rows_per_insert = 100 if sqlite else 1000

    # The finalizer's bookkeeping

    async def claim(self, board: str, period: str, owner: str, now_ms: int, lease_ms: int) -> bool:
        """Take (or take over, once its lease expired) the right to compute a period's
        result; True when `owner` holds it now. Each step is one atomic statement."""
        p = self._p
        insert = (
            "INSERT INTO period_claims (board, period, owner, expires_ms) "  # noqa: S608
            f"VALUES ({p}, {p}, {p}, {p})"
        )
        steal = (
            f"UPDATE period_claims SET owner = {p}, expires_ms = {p} "  # noqa: S608
            f"WHERE board = {p} AND period = {p} AND (expires_ms <= {p} OR owner = {p})"
        )
        holder = f"SELECT owner FROM period_claims WHERE board = {p} AND period = {p}"  # noqa: S608
        expires = now_ms + lease_ms

        async def statement(connection: Any) -> bool:
            try:
                await self._changing(connection, insert, (board, period, owner, expires))
                return True
            except _DUPLICATE_KEY_ERRORS:
                pass
            # The take-over is the atomic step; reading the holder back after it is not a
            # check-then-set (MySQL counts an UPDATE that changes nothing as 0 rows).
            await self._changing(connection, steal, (owner, expires, board, period, now_ms, owner))
            rows = await self._dialect.fetch(connection, holder, (board, period))
            return bool(rows) and str(rows[0][0]) == owner

        return bool(await self._run("period_claim", statement))

    async def mark(self, instance: str, flushed_through_ms: int, heartbeat_ms: int) -> None:
        """Record this instance's flushed-through watermark and heartbeat (an upsert)."""
        p = self._p
        if self._sqlite:
            upsert = (
                "INSERT INTO instance_watermarks (instance, flushed_through_ms, heartbeat_ms) "  # noqa: S608
                f"VALUES ({p}, {p}, {p}) ON CONFLICT (instance) DO UPDATE SET "
                "flushed_through_ms = MAX(flushed_through_ms, excluded.flushed_through_ms), "
                "heartbeat_ms = excluded.heartbeat_ms"
            )
        else:
            upsert = (
                "INSERT INTO instance_watermarks (instance, flushed_through_ms, heartbeat_ms) "  # noqa: S608
                f"VALUES ({p}, {p}, {p}) ON DUPLICATE KEY UPDATE "
                "flushed_through_ms = GREATEST(flushed_through_ms, VALUES(flushed_through_ms)), "
                "heartbeat_ms = VALUES(heartbeat_ms)"
            )

        async def statement(connection: Any) -> None:
            await self._changing(connection, upsert, (instance, flushed_through_ms, heartbeat_ms))

        await self._run("watermark", statement)

    async def forget(self, instance: str) -> None:
        """Drop an instance's watermark (it stopped after writing everything it acknowledged)."""
        statement_text = f"DELETE FROM instance_watermarks WHERE instance = {self._p}"  # noqa: S608

        async def statement(connection: Any) -> None:
            await self._changing(connection, statement_text, (instance,))

        await self._run("watermark_forget", statement)

    async def watermarks(self) -> list[tuple[str, int, int]]:
        """(instance, flushed_through_ms, heartbeat_ms) of every instance that has one."""

        async def query(connection: Any) -> list[tuple[str, int, int]]:
            rows = await self._dialect.fetch(
                connection,
                "SELECT instance, flushed_through_ms, heartbeat_ms FROM instance_watermarks",
            )
            return [(str(name), int(flushed), int(beat)) for name, flushed, beat in rows]

        marks: list[tuple[str, int, int]] = await self._run("watermarks", query)
        return marks

    # Results

    async def result(self, board: str, period: str) -> PeriodResult | None:
        """A final period's result, or None when it is not final."""
        p = self._p
        select = f"SELECT body FROM period_results WHERE board = {p} AND period = {p}"  # noqa: S608

        async def query(connection: Any) -> list[Any]:
            return await self._dialect.fetch(connection, select, (board, period))

        rows = await self._run("period_result", query)
        return decode(rows[0][0]) if rows else None

    async def final_periods(self, board: str) -> dict[str, int]:
        """Every final period of a board with its player count."""
        select = f"SELECT period, player_count FROM period_results WHERE board = {self._p}"  # noqa: S608

        async def query(connection: Any) -> list[Any]:
            return await self._dialect.fetch(connection, select, (board,))

        return {str(period): int(count) for period, count in await self._run("finals", query)}

    async def periods_with_events(self, board: str) -> list[str]:
        """Every period of a board that has events in the history, oldest first
        (`periods_in`: a skip scan)."""

        async def query(connection: Any) -> list[str]:
            return await periods_in(self._dialect, connection, "score_events", board)

        periods: list[str] = await self._run("event_periods", query)
        return periods

    async def freeze(
        self,
        board: str,
        period: str,
        rows: Sequence[FrozenRow],
        *,
        now_ms: int,
        delivery_id: str | None,
    ) -> PeriodResult | None:
        """Freeze a period's standings (`rows`, best first) and store its result (and its
        webhook outbox row when `delivery_id` is set), all in one transaction.

        Returns the result, or None when the period was already final (nothing changed).
        A period without scores is stored final with no players and no outbox row.
        """
        p = self._p
        reserve = (
            "INSERT INTO period_results (board, period, player_count, body, finalized_at_ms) "  # noqa: S608
            f"VALUES ({p}, {p}, 0, '', {p})"
        )
        complete = (
            f"UPDATE period_results SET player_count = {p}, body = {p} "  # noqa: S608
            f"WHERE board = {p} AND period = {p}"
        )

        insert = (
            "INSERT INTO period_standings "
            "(board, period, position, username, score, player_rank, reached_us) VALUES "
        )
        row_marks = "(" + ", ".join([p] * 7) + ")"

        async def transaction(connection: Any) -> PeriodResult | None:
            async with self._transaction(connection):
                try:
                    await self._dialect.execute(connection, reserve, (board, period, now_ms))
                except _DUPLICATE_KEY_ERRORS:
                    return None
                for start in range(0, len(rows), self._rows_per_insert):
                    chunk = rows[start : start + self._rows_per_insert]
                    values = ", ".join([row_marks] * len(chunk))
                    await self._dialect.execute(
                        connection,
                        insert + values,
                        tuple(value for row in chunk for value in (board, period, *row)),
                    )
                count = len(rows)
                result = PeriodResult(
                    board=board,
                    period=period,
                    player_count=count,
                    top=tuple(
                        RankedPlayer(
                            username=row.username,
                            score=row.score,
                            rank=row.rank,
                            player_count=count,
                        )
                        for row in rows[:RESULT_TOP_SIZE]
                    ),
                )
                body = encode(result).decode()
                await self._dialect.execute(connection, complete, (count, body, board, period))
                if delivery_id is not None and count > 0:
                    await self._dialect.execute(
                        connection,
                        INSERT_OUTBOX.format(p=p),
                        (delivery_id, board, period, body, 0, now_ms, now_ms, 0),
                    )
                return result

        # No time limit: freezing a period of millions of events takes a while, and the
        # claim's lease (not a timeout) is what lets another instance take over.
        result: PeriodResult | None = await self._run_unbounded("freeze", transaction)
        return result

    # Erasure

    async def erase(self, username: str) -> int:
        """Take a player out of every final period (erasePlayer); how many held them.

        Their standings rows go; the players after them move up one position (so pages
        stay whole), and those ranked behind them one rank (as if the player had never
        played: a tie it shared keeps its rank); the stored results and the webhook bodies
        (pending or sent) lose the player's entries, and the period's player count one.
        One transaction.
        """
        p = self._p
        find = (
            "SELECT board, period, position, player_rank FROM period_standings "  # noqa: S608
            f"WHERE username = {p}"
        )
        delete = (
            "DELETE FROM period_standings "  # noqa: S608
            f"WHERE board = {p} AND period = {p} AND username = {p}"
        )
        # In two steps, so no position is held twice at any moment: both engines check the
        # primary key row by row, in no promised order.
        lift = (
            "UPDATE period_standings SET position = -position "  # noqa: S608
            f"WHERE board = {p} AND period = {p} AND position > {p}"
        )
        settle = (
            "UPDATE period_standings SET position = -position - 1 "  # noqa: S608
            f"WHERE board = {p} AND period = {p} AND position < 0"
        )
        rerank = (
            "UPDATE period_standings SET player_rank = player_rank - 1 "  # noqa: S608
            f"WHERE board = {p} AND period = {p} AND player_rank > {p}"
        )
        recount = (
            "UPDATE period_results SET player_count = player_count - 1 "  # noqa: S608
            f"WHERE board = {p} AND period = {p} AND player_count > 0"
        )
        results = f"SELECT body FROM period_results WHERE board = {p} AND period = {p}"  # noqa: S608
        result_body = f"UPDATE period_results SET body = {p} WHERE board = {p} AND period = {p}"  # noqa: S608
        outbox = f"SELECT delivery_id, body FROM webhook_outbox WHERE board = {p} AND period = {p}"  # noqa: S608
        outbox_body = f"UPDATE webhook_outbox SET body = {p} WHERE delivery_id = {p}"  # noqa: S608

        async def transaction(connection: Any) -> int:
            fetch, execute = self._dialect.fetch, self._dialect.execute
            async with self._transaction(connection):
                held = await fetch(connection, find, (username,))
                for board, period, position, rank in held:
                    await execute(connection, delete, (board, period, username))
                    await execute(connection, lift, (board, period, position))
                    await execute(connection, settle, (board, period))
                    await execute(connection, rerank, (board, period, rank))
                    await execute(connection, recount, (board, period))
                    for (body,) in await fetch(connection, results, (board, period)):
                        if body:  # '' while a freeze is reserved, never seen committed
                            rewritten = _without(body, username, rank)
                            await execute(connection, result_body, (rewritten, board, period))
                    for delivery_id, body in await fetch(connection, outbox, (board, period)):
                        rewritten = _without(body, username, rank)
                        await execute(connection, outbox_body, (rewritten, delivery_id))
                return len(held)

        erased: int = await self._run_unbounded("standings_erase", transaction)
        return erased

    # Plumbing

    def _transaction(self, connection: Any) -> contextlib.AbstractAsyncContextManager[None]:
        return write_transaction(self._dialect, connection, sqlite=self._sqlite)

    async def _changing(self, connection: Any, statement: str, parameters: tuple[Any, ...]) -> int:
        """Run one changing statement, committed; the number of rows it matched."""
        if self._sqlite:
            await connection.execute("BEGIN IMMEDIATE")
            try:
                cursor = await connection.execute(statement, parameters)
                await connection.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    await connection.execute("ROLLBACK")
                raise
            return int(cursor.rowcount)
        async with connection.cursor() as cursor:
            return int(await cursor.execute(statement, parameters))


def _without(body: str, username: str, rank: int) -> str:
    """A stored result's JSON without the player (frozen at `rank`): out of its top, those
    ranked behind it one rank up, one player fewer (as `SqlStandings.erase` does)."""
    result = decode(body)
    count = max(0, result.player_count - 1)
    kept = tuple(
        dataclasses.replace(
            player,
            rank=player.rank - 1 if player.rank > rank else player.rank,
            player_count=count,
        )
        for player in result.top
        if player.username != username
    )
    return encode(dataclasses.replace(result, player_count=count, top=kept)).decode()
