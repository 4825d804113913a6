"""`SqlScoreHistory`: the `ScoreHistory` on MySQL/MariaDB (aiomysql) or SQLite (aiosqlite).

The URL scheme picks the dialect: `mysql+aiomysql://user@host:3306/name` or
`sqlite+aiosqlite:///path/to/file.db`. `databases` owns the connection pool (MySQL) or
opens a connection per operation (SQLite). What differs between the two is in the
dialect classes (`mysql.py`, `sqlite.py`); this class holds what they share.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from store.errors import StoreUnavailable
from store.models import ScoreEvent
from store.observer import StoreObserver
from store.sql import migrations
from store.sql.archive import SqlEventArchive
from store.sql.boards import SqlBoardTable
from store.sql.dialect import Dialect, event_row, writer_rows
from store.sql.event_reads import PeriodEvents
from store.sql.mysql import SCHEMES as MYSQL_SCHEMES
from store.sql.mysql import MySqlDialect
from store.sql.outbox import SqlOutbox
from store.sql.players import SqlPlayerRecords
from store.sql.pool import Pool
from store.sql.profiles import SqlProfileTable
from store.sql.registry import PlayerRegistry
from store.sql.replica import REPLICA_RETRY_SECONDS, REPLICA_WAIT_SECONDS, Replica
from store.sql.sqlite import SCHEMES as SQLITE_SCHEMES
from store.sql.sqlite import SqliteDialect
from store.sql.standings import SqlStandings

T = TypeVar("T")


def _scheme(url: str) -> str:
    return url.partition("://")[0].lower()


class SqlScoreHistory:
    """`ScoreHistory` on MySQL/MariaDB or SQLite, chosen by the URL scheme.

    `timeout` bounds every operation (connecting included): a database that hangs
    counts as unavailable instead of stalling the write batcher for ever. `observer`
    is told the time of every operation (waiting for a pooled connection included).
    `read_url` names a MySQL/MariaDB replica of `url` for the reads (see
    `store.sql.replica`); empty or equal to `url`: no replica.
    """

    def __init__(
        self,
        url: str,
        *,
        read_url: str = "",
        timeout: float = 10.0,
        observer: StoreObserver | None = None,
        replica_wait_seconds: float = REPLICA_WAIT_SECONDS,
        replica_retry_seconds: float = REPLICA_RETRY_SECONDS,
    ) -> None:
        scheme = _scheme(url)
        self._mysql: MySqlDialect | None = None
        self._dialect: Dialect
        if scheme in MYSQL_SCHEMES:
            self._dialect = self._mysql = MySqlDialect()
        elif scheme in SQLITE_SCHEMES:
            self._dialect = SqliteDialect(timeout)
        else:
            raise ValueError(
                f"unsupported history URL scheme {scheme!r}: "
                "use mysql+aiomysql://user:password@host:3306/name or sqlite+aiosqlite:///path"
            )
        if read_url == url:
            read_url = ""
        if read_url and not (self._mysql and _scheme(read_url) in MYSQL_SCHEMES):
            raise ValueError(
                "a read replica needs a MySQL/MariaDB history and a mysql+aiomysql:// read URL"
            )
        self._url = url
        self._read_url = read_url
        self._timeout = timeout
        self._observer = observer
        self._replica_wait_seconds = replica_wait_seconds
        self._replica_retry_seconds = replica_retry_seconds
        self._primary: Pool | None = None
        self._replica: Replica | None = None
        self._replica_pool: Pool | None = None
        self._events = PeriodEvents(self._dialect, sqlite=self._mysql is None)
        self._registry = PlayerRegistry()

    # Lifecycle

    async def connect(self) -> None:
        """Open the connection pool (MySQL: one connection at once, to fail early).

        The replica's pool opens connections only when a read needs one; it is pinged
        once here so that an unreachable replica is reported (and skipped) at start.
        """
        if self._primary is not None:
            return
        database = self._dialect.database(self._url, min_size=1, timeout=self._timeout)
        primary = Pool("history", database, self._observer)
        await primary.connect(self._timeout)
        self._primary = primary
        if self._read_url and self._mysql is not None:
            limit = Replica.limit(self._replica_wait_seconds)
            # min_size 0: connects nothing, so it cannot fail on a replica that is down.
            replica_database = self._mysql.database(self._read_url, min_size=0, timeout=limit)
            pool = Pool("history-replica", replica_database, self._observer)
            await pool.connect(limit)
            self._replica_pool = pool
            self._replica = Replica(
                pool,
                primary,
                self._mysql,
                timeout=self._timeout,
                wait_seconds=self._replica_wait_seconds,
                retry_seconds=self._replica_retry_seconds,
            )
            await self._replica.check()

    async def close(self) -> None:
        """Close the connection pools; safe when not connected."""
        pools = (self._primary, self._replica_pool)
        self._primary = self._replica_pool = None
        self._replica = None
        for pool in pools:
            if pool is not None:
                await pool.close(self._timeout)

    async def ping(self) -> None:
        """Raise `StoreUnavailable` unless the database (the primary) answers."""
        await self._run(
            "ping",
            lambda connection: self._dialect.fetch(connection, "SELECT 1"),
            limit=self._timeout,
        )

    async def replica_status(self) -> str | None:
        """The read replica's state for a readiness report; None when there is none.

        Informational: the service reads from the primary whenever the replica cannot
        be used, so this never makes the process unready.
        """
        if not self._read_url:
            return None
        if self._replica is None:
            return "not connected"
        return await self._replica.status()

    async def migrate(self) -> None:
        """Create or upgrade the tables to `SCHEMA_VERSION`; idempotent and safe concurrently.

        MySQL: the steps run under a named lock (GET_LOCK) of this database, so
        concurrent processes apply each step once, one after the other. SQLite: the
        steps run in one IMMEDIATE transaction (SQLite DDL is transactional).
        """
        # No overall time limit: a later step may rebuild a big table. Waiting for
        # another process's migration is bounded by the lock wait instead.
        await self._run(
            "migrate",
            lambda connection: migrations.migrate(self._dialect, connection),
            limit=None,
        )

    def board_table(self) -> SqlBoardTable:
        """The `boards` table, on this history's primary."""
        return SqlBoardTable(
            self._dialect,
            lambda what, operation: self._run(what, operation, limit=self._timeout),
            sqlite=self._mysql is None,
        )

    def player_records(self) -> SqlPlayerRecords:
        """Bans and a player's records across boards, on this history's primary."""
        return SqlPlayerRecords(
            self._dialect,
            lambda what, operation: self._run(what, operation, limit=self._timeout),
            sqlite=self._mysql is None,
        )

    def profile_table(self) -> SqlProfileTable:
        """The `player_profiles` table, on this history's primary."""
        return SqlProfileTable(
            self._dialect,
            lambda what, operation: self._run(what, operation, limit=self._timeout),
            sqlite=self._mysql is None,
        )

    def standings(self) -> SqlStandings:
        """Final standings, results, claims and watermarks (seasons), on the primary."""
        return SqlStandings(
            self._dialect,
            lambda what, operation: self._run(what, operation, limit=self._timeout),
            lambda what, operation: self._run(what, operation, limit=None),
            sqlite=self._mysql is None,
        )

    def archive(self) -> SqlEventArchive:
        """The event archive (moves and retention deletes, batch by batch), on the primary."""
        return SqlEventArchive(
            self._dialect,
            lambda what, operation: self._run(what, operation, limit=self._timeout),
            sqlite=self._mysql is None,
            patient=lambda what, operation: self._run(what, operation, limit=None),
        )

    def outbox(self) -> SqlOutbox:
        """The webhook outbox, on the primary."""
        return SqlOutbox(
            self._dialect,
            lambda what, operation: self._run(what, operation, limit=self._timeout),
        )

    # Writes

    async def append(self, events: Sequence[ScoreEvent]) -> None:
        """Store events with one multi-row INSERT; events already stored are skipped.

        One transaction: it reads the erasure epoch first and registers in
        `player_periods` the players this instance's `PlayerRegistry` has not seen
        registered (store/sql/registry.py). Split into several statements only where
        the database forces it: SQLite's limit on parameters per statement, MySQL's
        max_allowed_packet (each part is idempotent, so a retry is safe). When events
        carry a writer, the same transaction upserts each writer's highest sequence per
        board period into `writer_sequences` (one multi-row statement, never lowering
        one): what a rebuild restores (`writers`).
        """
        if not events:
            return
        rows = [event_row(event) for event in events]
        writers = writer_rows(events)
        await self._run(
            "append",
            lambda connection: self._dialect.insert(connection, rows, writers, self._registry),
            limit=self._timeout,
        )

    # Reads

    async def totals(
        self, board: str, period: str, *, patient: bool = False
    ) -> list[tuple[str, int]]:
        """Every player's summed delta in the period (an index-only scan), without banned
        players and players removed who have not scored since (docs/moderation.md).

        On the replica when it has caught up with the primary, else on the primary.
        """

        async def query(connection: Any) -> list[tuple[str, int]]:
            rows, removed = await self._events.totals(connection, board, period)
            absent = {str(username) for username, presence in removed if int(presence) <= 0}
            return [
                (str(username), int(total)) for username, total in rows if username not in absent
            ]

        return await self._read("totals", query, patient=patient)

    async def client_events(
        self, board: str, period: str, *, since_life: int = 0, patient: bool = False
    ) -> list[tuple[str, str, int]]:
        """(username, event id, delta) of each client-supplied event id stored for the period
        whose `id_life` (its idempotency-window bucket) is `since_life` or later.

        On the replica when it has caught up with the primary, else on the primary.
        """

        async def query(connection: Any) -> list[tuple[str, str, int]]:
            rows = await self._events.client_events(connection, board, period, since_life)
            return [
                (str(username), str(event_id), int(delta)) for username, event_id, delta in rows
            ]

        return await self._read("client_events", query, patient=patient)

    async def writers(
        self, board: str, period: str, *, patient: bool = False
    ) -> list[tuple[str, int]]:
        """(writer id, highest sequence) of each writer that wrote to the period: the
        period's `writer_sequences` rows, a key range (not the period's events).

        On the replica when it has caught up with the primary, else on the primary.
        """

        async def query(connection: Any) -> list[tuple[str, int]]:
            rows = await self._events.writers(connection, board, period)
            return [(str(writer), int(sequence)) for writer, sequence in rows]

        return await self._read("writers", query, patient=patient)

    async def writes(
        self, board: str, period: str, *, patient: bool = False
    ) -> list[tuple[str, int, int | None]]:
        """(username, applied_at_us, value) of every write of the period, in the order
        applied (rows without an instant count as 0, first); a removal's value is None
        (`board_model.replay`).

        On the replica when it has caught up with the primary, else on the primary.
        """

        async def query(connection: Any) -> list[tuple[str, int, int | None]]:
            rows = await self._events.writes(connection, board, period)
            return [
                (str(username), int(instant or 0), None if presence == -1 else int(value))
                for username, instant, value, presence in rows
            ]

        return await self._read("writes", query, patient=patient)

    # Plumbing

    def patient_reads(self) -> PatientReads:
        """These reads without a time limit, on the primary (the seasons' fold)."""
        return PatientReads(self)

    async def _read(
        self, what: str, operation: Callable[[Any], Awaitable[T]], *, patient: bool = False
    ) -> T:
        if patient:
            return await self._run(what, operation, limit=None)
        if self._replica is not None:
            return await self._replica.read(what, operation)
        return await self._run(what, operation, limit=self._timeout)

    async def _run(
        self,
        what: str,
        operation: Callable[[Any], Awaitable[T]],
        *,
        limit: float | None,
    ) -> T:
        """Run on the primary within `limit` seconds (None: no limit)."""
        if self._primary is None:
            raise StoreUnavailable(f"history {what}: not connected")
        return await self._primary.run(what, operation, limit=limit)


class PatientReads:
    """A history's `HistoryReads` without a time limit, on the primary: what the seasons'
    finalizer folds an ended period from. Folding a period of millions of events takes
    longer than a request may wait (10 s: measured past it with 5M events on a loaded
    machine), and the finalizer's claim lease, not a timeout, lets another instance take
    over a stalled one."""

    def __init__(self, history: SqlScoreHistory) -> None:
        self._history = history

    async def totals(self, board: str, period: str) -> list[tuple[str, int]]:
        """`SqlScoreHistory.totals`, without a time limit."""
        return await self._history.totals(board, period, patient=True)

    async def client_events(
        self, board: str, period: str, *, since_life: int = 0
    ) -> list[tuple[str, str, int]]:
        """`SqlScoreHistory.client_events`, without a time limit."""
        return await self._history.client_events(board, period, since_life=since_life, patient=True)

    async def writers(self, board: str, period: str) -> list[tuple[str, int]]:
        """`SqlScoreHistory.writers`, without a time limit."""
        return await self._history.writers(board, period, patient=True)

    async def writes(self, board: str, period: str) -> list[tuple[str, int, int | None]]:
        """`SqlScoreHistory.writes`, without a time limit."""
        return await self._history.writes(board, period, patient=True)
