"""A player's records across boards: bans, the periods holding their history, erasure.

Created by migration 5 (the `player_bans` table); a player's rows of `score_events` are
found through the player registry (migration 11, store/sql/registry.py) and read and erased
in `score_events_archive` too (migration 9, on its own username index).
Each changing statement is committed on its own (MySQL autocommit; SQLite in an IMMEDIATE
transaction); an erasure deletes in one transaction, so its count is exactly what went.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar

from store.models import REMOVAL_ID_PREFIX, value_type
from store.sql.dialect import Dialect
from store.sql.registry import EPOCH_BUMP

T = TypeVar("T")

Runner = Callable[[str, Callable[[Any], Awaitable[T]]], Awaitable[T]]


@value_type
class BanRecord:
    """A stored ban."""

    username: str
    reason: str | None
    banned_at_ms: int


@value_type
class PlayerPeriod:
    """A board period in which a player has history: their total and whether a rebuild
    (ignoring bans) would rank them (False once removed and not scored since)."""

    board: str
    period: str
    total: int
    present: bool


@value_type
class ErasedRows:
    """What an erasure deleted from the history."""

    events: int
    bans: int


_ERASE_HOOKS: Final[tuple[str, ...]] = ("DELETE FROM player_profiles WHERE username",)
"""Other tables keyed by username that an erasure empties, as `DELETE FROM <table> WHERE
username` statements (the parameter is added): a table of players' data lands here."""


class SqlPlayerRecords:
    """Bans and per-player reads and erasure, run on the history's primary."""

    def __init__(self, dialect: Dialect, run: Runner[Any], *, sqlite: bool) -> None:
        self._dialect = dialect
        self._run = run
        self._sqlite = sqlite
        p = dialect.placeholder
        self._p = p
        self._select_bans = "SELECT username FROM player_bans"
        self._select_ban = (
            f"SELECT username, reason, banned_at_ms FROM player_bans WHERE username = {p}"  # noqa: S608
        )
        if sqlite:
            self._upsert_ban = (
                "INSERT INTO player_bans (username, reason, banned_at_ms) "  # noqa: S608
                f"VALUES ({p}, {p}, {p}) "
                "ON CONFLICT (username) DO UPDATE SET reason = excluded.reason"
            )
        else:
            self._upsert_ban = (
                "INSERT INTO player_bans (username, reason, banned_at_ms) "  # noqa: S608
                f"VALUES ({p}, {p}, {p}) ON DUPLICATE KEY UPDATE reason = VALUES(reason)"
            )
        self._delete_ban = f"DELETE FROM player_bans WHERE username = {p}"  # noqa: S608
        # The hot table's rows through the registry (store/sql/registry.py): each of the
        # player's board periods, then that period's range of the totals index (board,
        # period, username); the archive's on its own username index (archived rows of
        # final periods included: an erasure must reach them). Removal rows are told apart
        # by their id's prefix. One statement over both tables: a batch archived meanwhile
        # is seen once.
        hot = (
            "player_periods r JOIN score_events e ON e.board = r.board "
            f"AND e.period = r.period AND e.username = r.username WHERE r.username = {p}"
        )
        cold = f"score_events_archive e WHERE e.username = {p}"
        part = (
            "SELECT e.board, e.period, SUM(e.delta) AS total, "  # noqa: S608
            "SUM(COALESCE(e.presence, 0)) AS started, MAX(e.presence IS NULL) AS unmarked, "
            f"MAX(CASE WHEN e.event_id LIKE {p} THEN 1 ELSE 0 END) AS removed "
            "FROM {source} GROUP BY e.board, e.period"
        )
        self._periods = (
            "SELECT board, period, SUM(total), SUM(started) + MAX(unmarked), MAX(removed) "  # noqa: S608
            f"FROM ({part.format(source=hot)} UNION ALL "
            f"{part.format(source=cold)}) AS parts GROUP BY board, period"
        )
        self._client_ids = (
            f"SELECT e.board, e.period, e.event_id FROM {hot} AND e.client_event_id "  # noqa: S608
            f"UNION ALL SELECT e.board, e.period, e.event_id FROM {cold} AND e.client_event_id"
        )
        if sqlite:
            self._delete_events = (
                "DELETE FROM score_events WHERE (board, period, username) IN ("  # noqa: S608
                f"SELECT board, period, username FROM player_periods WHERE username = {p})"
            )
        else:
            self._delete_events = f"DELETE e FROM {hot}"
        self._delete_archived = f"DELETE FROM score_events_archive WHERE username = {p}"  # noqa: S608
        self._delete_registered = f"DELETE FROM player_periods WHERE username = {p}"  # noqa: S608
        # As history.writes orders a period's rows (NULL instants first, ties by insertion).
        columns = "e.board, e.period, e.applied_at_us, e.delta, e.presence, e.id"
        self._writes = (
            f"SELECT {columns} FROM {hot} UNION ALL "  # noqa: S608
            f"SELECT {columns} FROM {cold} ORDER BY 1, 2, 3, 6"
        )

    # Bans

    async def banned_usernames(self) -> set[str]:
        """Every banned username."""

        async def query(connection: Any) -> set[str]:
            rows = await self._dialect.fetch(connection, self._select_bans)
            return {str(row[0]) for row in rows}

        names: set[str] = await self._run("bans_all", query)
        return names

    async def ban(self, username: str) -> BanRecord | None:
        """The player's ban, or None."""

        async def query(connection: Any) -> BanRecord | None:
            rows = await self._dialect.fetch(connection, self._select_ban, (username,))
            if not rows:
                return None
            name, reason, banned_at_ms = rows[0]
            return BanRecord(
                username=str(name),
                reason=None if reason is None else str(reason),
                banned_at_ms=int(banned_at_ms),
            )

        record: BanRecord | None = await self._run("bans_get", query)
        return record

    async def store_ban(self, username: str, reason: str | None, now_ms: int) -> None:
        """Ban a player (a ban already stored keeps its time and takes the new reason)."""

        async def statement(connection: Any) -> int:
            return await self._changing(
                connection, [(self._upsert_ban, (username, reason, now_ms))]
            )

        await self._run("bans_store", statement)

    async def delete_ban(self, username: str) -> bool:
        """Lift a ban; False when there was none."""

        async def statement(connection: Any) -> int:
            return await self._changing(connection, [(self._delete_ban, (username,))])

        return bool(await self._run("bans_delete", statement) > 0)

    # A player's history

    async def periods(self, username: str) -> list[PlayerPeriod]:
        """Every board period holding history rows of the player."""

        async def query(connection: Any) -> list[PlayerPeriod]:
            rows = await self._dialect.fetch(
                connection, self._periods, (REMOVAL_ID_PREFIX + "%", username) * 2
            )
            return [
                PlayerPeriod(
                    board=str(board),
                    period=str(period),
                    total=int(total),
                    present=not int(removed) or int(presence) > 0,
                )
                for board, period, total, presence, removed in rows
            ]

        periods: list[PlayerPeriod] = await self._run("player_periods", query)
        return periods

    async def writes(self, username: str) -> dict[tuple[str, str], list[tuple[int, int | None]]]:
        """The player's writes per board period, `(applied_at_us, value)` in the order
        applied, a removal's value None: what `board_model.replay` folds (unbanPlayer on
        boards that keep instants)."""

        async def query(connection: Any) -> dict[tuple[str, str], list[tuple[int, int | None]]]:
            rows = await self._dialect.fetch(connection, self._writes, (username,) * 2)
            found: dict[tuple[str, str], list[tuple[int, int | None]]] = {}
            for board, period, instant, value, presence, _ in rows:
                found.setdefault((str(board), str(period)), []).append(
                    (int(instant or 0), None if presence == -1 else int(value))
                )
            return found

        writes: dict[tuple[str, str], list[tuple[int, int | None]]] = await self._run(
            "player_writes", query
        )
        return writes

    async def client_event_ids(self, username: str) -> list[tuple[str, str, str]]:
        """(board, period, event id) of the player's client-supplied event ids."""

        async def query(connection: Any) -> list[tuple[str, str, str]]:
            rows = await self._dialect.fetch(connection, self._client_ids, (username,) * 2)
            return [(str(board), str(period), str(event_id)) for board, period, event_id in rows]

        ids: list[tuple[str, str, str]] = await self._run("player_event_ids", query)
        return ids

    async def erase(self, username: str) -> ErasedRows:
        """Delete every history row of the player (archived ones too) and their ban (and
        the rows of the tables in `_ERASE_HOOKS`), in one transaction."""
        p = self._p
        # The epoch first (store/sql/registry.py, rule 2): it waits for the flushes in
        # flight, which may be writing the player's rows without registering them (their
        # cache says registered), and makes every later flush register them again.
        statements = [
            (EPOCH_BUMP, ()),
            (self._delete_events, (username,)),
            (self._delete_archived, (username,)),
            (self._delete_registered, (username,)),
            (self._delete_ban, (username,)),
            *((f"{hook} = {p}", (username,)) for hook in _ERASE_HOOKS),
        ]

        async def run(connection: Any) -> list[int]:
            return await self._counted(connection, statements)

        counts = await self._run("player_erase", run)
        return ErasedRows(events=counts[1] + counts[2], bans=counts[4])

    async def _changing(
        self, connection: Any, statements: list[tuple[str, tuple[Any, ...]]]
    ) -> int:
        """Run changing statements in one transaction; the rows the first one matched."""
        return (await self._counted(connection, statements))[0]

    async def _counted(
        self, connection: Any, statements: list[tuple[str, tuple[Any, ...]]]
    ) -> list[int]:
        """Run statements in one committed transaction; the rows each one changed."""
        counts: list[int] = []
        if self._sqlite:
            await connection.execute("BEGIN IMMEDIATE")
            try:
                for statement, parameters in statements:
                    cursor = await connection.execute(statement, parameters)
                    counts.append(int(cursor.rowcount))
                await connection.execute("COMMIT")
            except BaseException:
                await connection.execute("ROLLBACK")
                raise
            return counts
        async with connection.cursor() as cursor:
            await cursor.execute("START TRANSACTION")
            try:
                for statement, parameters in statements:
                    counts.append(int(await cursor.execute(statement, parameters)))
                await cursor.execute("COMMIT")
            except BaseException:
                await cursor.execute("ROLLBACK")
                raise
        return counts
