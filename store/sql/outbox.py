"""The webhook outbox: one row per `PeriodResult` to deliver, until a receiver takes it.

Created by migration 3. The finalizer inserts the row in the transaction that stores the
result (`store.sql.standings`), so a result is never stored without its delivery nor
delivered twice under two ids. Any instance may deliver a due row: it first claims it
with one conditional UPDATE (`claim`: still undelivered, due, and not claimed by someone
whose claim is still running), so two instances never send the same attempt. The row
keeps its `delivery_id` for ever: every attempt, on any instance, after any restart,
carries the same id. `done_at_ms` is set on success, or when the retry window is over
(`last_error` then says so).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final

from store.sql.dialect import Dialect

Runner = Callable[[str, Callable[[Any], Awaitable[Any]]], Awaitable[Any]]

INSERT_OUTBOX: Final = (
    "INSERT INTO webhook_outbox (delivery_id, board, period, body, attempts, "
    "created_at_ms, next_attempt_ms, claimed_until_ms) "
    "VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, {p})"
)
"""The outbox row of a new result (format `p` with the driver's placeholder)."""

_ERROR_CHARS: Final = 250


class SqlOutbox:
    """Due rows, claims and outcomes of the `webhook_outbox` table."""

    def __init__(self, dialect: Dialect, run: Runner) -> None:
        self._dialect = dialect
        self._run = run
        p = dialect.placeholder
        self._due = (
            "SELECT delivery_id FROM webhook_outbox "  # noqa: S608
            f"WHERE done_at_ms IS NULL AND next_attempt_ms <= {p} AND claimed_until_ms <= {p} "
            f"ORDER BY next_attempt_ms LIMIT {p}"
        )
        self._claim = (
            f"UPDATE webhook_outbox SET claimed_until_ms = {p} "  # noqa: S608
            f"WHERE delivery_id = {p} AND done_at_ms IS NULL AND next_attempt_ms <= {p} "
            f"AND claimed_until_ms <= {p}"
        )
        self._read = (
            "SELECT body, attempts, created_at_ms FROM webhook_outbox "  # noqa: S608
            f"WHERE delivery_id = {p}"
        )
        self._done = (
            f"UPDATE webhook_outbox SET done_at_ms = {p}, attempts = attempts + 1, "  # noqa: S608
            f"claimed_until_ms = 0, last_error = {p} WHERE delivery_id = {p}"
        )
        self._retry = (
            f"UPDATE webhook_outbox SET attempts = attempts + 1, next_attempt_ms = {p}, "  # noqa: S608
            f"claimed_until_ms = 0, last_error = {p} WHERE delivery_id = {p}"
        )
        self._depth = "SELECT COUNT(*) FROM webhook_outbox WHERE done_at_ms IS NULL"

    async def due(self, now_ms: int, limit: int) -> list[str]:
        """Ids of undelivered rows due now and not claimed, oldest due first."""

        async def query(connection: Any) -> list[Any]:
            return await self._dialect.fetch(connection, self._due, (now_ms, now_ms, limit))

        return [str(delivery_id) for (delivery_id,) in await self._run("outbox_due", query)]

    async def claim(
        self, delivery_id: str, now_ms: int, until_ms: int
    ) -> tuple[bytes, int, int] | None:
        """Claim a due row until `until_ms`: (body, attempts so far, created_at_ms), or None
        when another instance claimed or delivered it first."""

        async def statement(connection: Any) -> tuple[bytes, int, int] | None:
            changed = await self._dialect.changing(
                connection, self._claim, (until_ms, delivery_id, now_ms, now_ms)
            )
            if changed == 0:
                return None
            rows = await self._dialect.fetch(connection, self._read, (delivery_id,))
            body, attempts, created = rows[0]
            data = body.encode() if isinstance(body, str) else bytes(body)
            return data, int(attempts), int(created)

        claimed: tuple[bytes, int, int] | None = await self._run("outbox_claim", statement)
        return claimed

    async def delivered(self, delivery_id: str, now_ms: int) -> None:
        """The receiver took it (2xx): done."""
        await self._finish(self._done, (now_ms, None, delivery_id))

    async def abandoned(self, delivery_id: str, now_ms: int, error: str) -> None:
        """The retry window is over: done, undelivered (`error` says why)."""
        await self._finish(self._done, (now_ms, f"abandoned: {error}"[:_ERROR_CHARS], delivery_id))

    async def failed(self, delivery_id: str, next_attempt_ms: int, error: str) -> None:
        """An attempt failed: try again at `next_attempt_ms`."""
        await self._finish(self._retry, (next_attempt_ms, error[:_ERROR_CHARS], delivery_id))

    async def depth(self) -> int:
        """Rows still to deliver."""

        async def query(connection: Any) -> list[Any]:
            return await self._dialect.fetch(connection, self._depth)

        rows = await self._run("outbox_depth", query)
        return int(rows[0][0])

    async def _finish(self, statement_text: str, parameters: tuple[Any, ...]) -> None:
        async def statement(connection: Any) -> None:
            await self._dialect.changing(connection, statement_text, parameters)

        await self._run("outbox_update", statement)
