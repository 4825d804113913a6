"""The MySQL/MariaDB dialect (aiomysql): pools, one multi-row INSERT per packet, GET_LOCK."""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Final

import aiomysql
from databases import Database

from store.errors import StoreUnavailable
from store.sql.dialect import EVENT_COLUMNS, WRITER_COLUMNS, Migration, Row
from store.sql.literals import literals
from store.sql.registry import EPOCH_READ_LOCKED, PLAYER_COLUMNS, PlayerRegistry

SCHEMES: Final = frozenset({"mysql", "mysql+aiomysql"})

_MIGRATION_LOCK_SECONDS: Final = 60
_MIGRATION_LOCK: Final = "CONCAT('leaderboard-migrate:', LEFT(DATABASE(), 40))"
# Room for the packet header and the statement around the values.
_PACKET_SLACK_BYTES: Final = 1024
# The server's status flag (SERVER_STATUS_NO_BACKSLASH_ESCAPES of the protocol) under which
# a quote is doubled rather than backslash-escaped: store/sql/literals.py does not do that.
_NO_BACKSLASH_ESCAPES: Final = 0x200


def _events_insert(count: int) -> str:
    """One multi-row INSERT of `count` event rows that skips those already stored."""
    values = ",".join(("(%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",) * count)
    # Only placeholders are spliced in; `_insert` fills them with escaped literals.
    return (
        f"INSERT INTO score_events ({EVENT_COLUMNS}) VALUES {values} "  # noqa: S608
        "ON DUPLICATE KEY UPDATE id = id"
    )


def _writers_upsert(count: int) -> str:
    """One multi-row upsert of `count` writer_sequences rows that never lowers a sequence,
    so a retried flush (or an older one landing late) changes nothing."""
    values = ",".join(("(%s,%s,%s,%s)",) * count)
    return (
        f"INSERT INTO writer_sequences ({WRITER_COLUMNS}) VALUES {values} "  # noqa: S608
        "ON DUPLICATE KEY UPDATE sequence = GREATEST(sequence, VALUES(sequence))"
    )


def _players_upsert(count: int) -> str:
    """One multi-row upsert of `count` player_periods rows; a row already there stays."""
    values = ",".join(("(%s,%s,%s)",) * count)
    return (
        f"INSERT INTO player_periods ({PLAYER_COLUMNS}) VALUES {values} "  # noqa: S608
        "ON DUPLICATE KEY UPDATE username = username"
    )


def _flat(rows: list[Row]) -> list[Any]:
    return [value for row in rows for value in row]


class MySqlDialect:
    """`Dialect` of MySQL/MariaDB: `%s` parameters, every statement through a cursor.

    `max_statement_bytes` is the server's `max_allowed_packet` less some room, read on
    the first insert; an INSERT bigger than that is split in halves until each fits.
    """

    placeholder: Final = "%s"

    def __init__(self) -> None:
        self.max_statement_bytes: int | None = None

    def database(self, url: str, *, min_size: int, timeout: float) -> Database:
        """A pool of up to 10 connections, in strict SQL mode, utf8mb4."""
        return Database(
            url,
            min_size=min_size,
            max_size=10,
            charset="utf8mb4",
            connect_timeout=max(1, math.ceil(timeout)),
            pool_recycle=3600,
            # Strict: a value that does not fit is an error, never silently truncated.
            sql_mode="'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'",  # aiomysql sends it unquoted
        )

    async def fetch(
        self, connection: Any, statement: str, parameters: Sequence[Any] = ()
    ) -> list[Row]:
        """Run a statement through a cursor and return its rows."""
        async with connection.cursor() as cursor:
            await cursor.execute(statement, parameters or None)
            return list(await cursor.fetchall())

    async def execute(
        self, connection: Any, statement: str, parameters: Sequence[Any] = ()
    ) -> None:
        """Run a statement through a cursor."""
        async with connection.cursor() as cursor:
            await cursor.execute(statement, parameters or None)

    async def changing(self, connection: Any, statement: str, parameters: Sequence[Any]) -> int:
        """Run one changing statement (autocommit); the rows it changed."""
        async with connection.cursor() as cursor:
            return int(await cursor.execute(statement, parameters))

    async def insert(
        self, connection: Any, rows: list[Row], writers: list[Row], registry: PlayerRegistry
    ) -> None:
        """One transaction: the epoch share-locked, the players `registry` has not seen
        registered (`player_periods`), one INSERT of the events per `max_allowed_packet`,
        with `writers` the `writer_sequences` upsert. Every part is idempotent, so a retry
        after an unknown outcome is safe. The cache learns the players after the commit
        (store/sql/registry.py says why each step is where it is)."""
        if self.max_statement_bytes is None:
            packet = await self.fetch(connection, "SELECT @@max_allowed_packet")
            self.max_statement_bytes = int(packet[0][0]) - _PACKET_SLACK_BYTES
        limit = self.max_statement_bytes
        await connection.begin()
        try:
            async with connection.cursor() as cursor:
                # Locked until the commit: an erasure's epoch bump waits for this flush, so
                # it either committed before (the new epoch empties the cache) or finds
                # these rows through registry rows that are there.
                await cursor.execute(EPOCH_READ_LOCKED)
                found = await cursor.fetchone()
                epoch = None if found is None else int(found[0])
                players = registry.unregistered(epoch, rows)
                if players:
                    await self._insert(cursor, players, limit, _players_upsert)
                await self._insert(cursor, rows, limit)
                if writers:
                    await self._insert(cursor, writers, limit, _writers_upsert)
        except BaseException:
            # The connection may be gone; the transaction dies with it then.
            with contextlib.suppress(aiomysql.Error, OSError):
                await connection.rollback()
            raise
        await connection.commit()
        registry.registered(epoch, players)

    async def _insert(
        self, cursor: Any, rows: list[Row], limit: int, build: Callable[[int], str] | None = None
    ) -> None:
        """`build(len(rows))` (the events' INSERT by default) with `rows`, split in halves
        until each part fits in `limit` bytes."""
        template = (build or _events_insert)(len(rows))
        if cursor.connection.server_status & _NO_BACKSLASH_ESCAPES:
            statement: str = cursor.mogrify(template, _flat(rows))  # quotes doubled instead
        else:
            try:  # the driver's text, built ~2.5x cheaper (store/sql/literals.py)
                statement = template % literals(rows)
            except TypeError:
                # A value of a type literals() does not know (a str subclass, a float):
                # the driver's escaping, rather than a flush that fails on every retry.
                statement = cursor.mogrify(template, _flat(rows))
        # A character takes at most 4 bytes: encode only when the text could be too big.
        if len(statement) * 4 > limit and len(statement.encode()) > limit and len(rows) > 1:
            half = len(rows) // 2
            await self._insert(cursor, rows[:half], limit, build)
            await self._insert(cursor, rows[half:], limit, build)
            return
        await cursor.execute(statement)

    @asynccontextmanager
    async def migration_lock(self, connection: Any) -> AsyncIterator[None]:
        """A named lock of this database (GET_LOCK), with the server's notes off meanwhile.

        CREATE ... IF NOT EXISTS on an existing table leaves a note, which aiomysql would
        re-raise as a Python warning.
        """
        rows = await self.fetch(
            connection, f"SELECT GET_LOCK({_MIGRATION_LOCK}, %s)", (_MIGRATION_LOCK_SECONDS,)
        )
        if not rows or rows[0][0] != 1:
            raise StoreUnavailable("timed out waiting for another process's migration")
        try:
            await self.execute(connection, "SET @lb_sql_notes = @@session.sql_notes")
            await self.execute(connection, "SET SESSION sql_notes = 0")
            try:
                yield
            finally:
                await self.execute(connection, "SET SESSION sql_notes = @lb_sql_notes")
        finally:
            await self.execute(connection, f"DO RELEASE_LOCK({_MIGRATION_LOCK})")

    def steps(self, migration: Migration) -> tuple[str, ...]:
        """The MySQL statements of a migration."""
        return migration.mysql

    async def record_version(self, connection: Any, version: int) -> None:
        """Upsert the version, never lowering it."""
        await self.execute(
            connection,
            "INSERT INTO schema_version (id, version) VALUES (1, %s) "
            "ON DUPLICATE KEY UPDATE version = GREATEST(version, %s)",
            (version, version),
        )
