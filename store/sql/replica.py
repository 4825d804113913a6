"""Reads on a MySQL/MariaDB read replica, only once it has caught up with the primary.

The two reads, `totals` and `client_events`, serve rebuilds and reconciles only, and a
rebuild from a replica that lags would silently drop acknowledged increments from the
live ranking. So each read first asks the primary for its GTID position (MariaDB
`@@gtid_binlog_pos`, MySQL `@@gtid_executed`) and waits on the replica until it has
applied that position (`MASTER_GTID_WAIT` / `WAIT_FOR_EXECUTED_GTID_SET`), for at most
`wait_seconds`. Only then does the read run on the replica: it sees at least everything
committed before the read began, as a read on the primary would. When the replica cannot
confirm (it lags, is down, GTIDs are off) the read runs on the primary, a warning is
logged, and the replica is left alone for `retry_seconds`, so a lagging replica costs one
bounded wait per interval rather than one per read. Writes, migrations and `ping` use the
primary only; the replica's pool opens no connection up front, so a replica that is down
never stops the service from starting or writing.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar

from store.errors import StoreUnavailable
from store.sql.mysql import MySqlDialect
from store.sql.pool import Pool

logger = logging.getLogger(__name__)

T = TypeVar("T")

REPLICA_WAIT_SECONDS: Final = 5.0
"""How long a read waits for the replica to catch up with the primary before using the primary."""
REPLICA_RETRY_SECONDS: Final = 30.0
"""How long reads skip a replica that could not confirm it had caught up."""
# Time beyond the server-side catch-up wait for connecting and the round trips around it.
_SLACK_SECONDS: Final = 1.0


class Replica:
    """A replica of `primary` that serves reads when it has caught up (see the module docstring)."""

    def __init__(
        self,
        pool: Pool,
        primary: Pool,
        dialect: MySqlDialect,
        *,
        timeout: float,
        wait_seconds: float,
        retry_seconds: float,
    ) -> None:
        self._pool = pool
        self._primary = primary
        self._dialect = dialect
        self._timeout = timeout
        self._wait_seconds = wait_seconds
        self._retry_seconds = retry_seconds
        self._skipped_until = 0.0
        self._problem = ""
        self._primary_is_mariadb: bool | None = None

    @staticmethod
    def limit(wait_seconds: float) -> float:
        """The time limit of a statement on the replica: the catch-up wait and some slack."""
        return wait_seconds + _SLACK_SECONDS

    async def check(self) -> None:
        """Ping the replica (at start): an unreachable one is reported and skipped."""
        try:
            await self._ping()
        except StoreUnavailable as error:
            self._skip(str(error))

    async def status(self) -> str:
        """The replica's state for a readiness report (`ok`, unavailable, or skipped)."""
        try:
            await self._ping()
        except StoreUnavailable as error:
            return f"unavailable: {error}"
        skipped_for = self._skipped_until - time.monotonic()
        if skipped_for > 0:
            return f"skipped for {skipped_for:.0f} s, reads use the primary: {self._problem}"
        return "ok"

    async def read(self, what: str, operation: Callable[[Any], Awaitable[T]]) -> T:
        """Run a read here if caught up with the primary, else on the primary."""
        if await self._caught_up():
            try:
                return await self._pool.run(what, operation, limit=self._timeout)
            except StoreUnavailable as error:
                self._skip(str(error))
        return await self._primary.run(what, operation, limit=self._timeout)

    async def _ping(self) -> None:
        await self._pool.run(
            "ping",
            lambda connection: self._dialect.fetch(connection, "SELECT 1"),
            limit=self.limit(self._wait_seconds),
        )

    async def _caught_up(self) -> bool:
        """Whether the replica has applied everything the primary had committed just now."""
        if time.monotonic() < self._skipped_until:
            return False
        try:
            position = await self._primary.run(
                "gtid_position", self._gtid_position, limit=self._timeout
            )
        except StoreUnavailable:
            # The primary is failing: the read on it reports that, not the replica.
            return False
        if position is None:
            self._skip(
                "GTIDs are off on the primary (MariaDB: log_bin; MySQL: gtid_mode = ON), "
                "so the replica's lag cannot be checked"
            )
            return False
        try:
            reached = await self._pool.run(
                "catch_up",
                lambda connection: self._wait_for_position(connection, position),
                limit=self.limit(self._wait_seconds),
            )
        except StoreUnavailable as error:
            self._skip(str(error))
            return False
        if not reached:
            self._skip(
                f"it did not reach the primary's GTID position {position!r} "
                f"within {self._wait_seconds} s"
            )
        return reached

    async def _gtid_position(self, connection: Any) -> str | None:
        """The primary's GTID position; None when it keeps none (the lag is unknowable)."""
        if self._primary_is_mariadb is None:
            ((version,),) = await self._dialect.fetch(connection, "SELECT VERSION()")
            self._primary_is_mariadb = "mariadb" in str(version).lower()
        if self._primary_is_mariadb:
            statement = "SELECT @@GLOBAL.log_bin, @@GLOBAL.gtid_binlog_pos"
        else:
            statement = "SELECT @@GLOBAL.gtid_mode = 'ON', @@GLOBAL.gtid_executed"
        ((enabled, position),) = await self._dialect.fetch(connection, statement)
        return str(position) if enabled else None

    async def _wait_for_position(self, connection: Any, position: str) -> bool:
        """Wait on the replica, server side, until it has applied `position`."""
        if self._primary_is_mariadb:
            # Fractional seconds; 0 once gtid_slave_pos has reached it, -1 on timeout.
            statement = "SELECT MASTER_GTID_WAIT(%s, %s)"
            wait: float = self._wait_seconds
        else:
            # Whole seconds; 0 once gtid_executed contains it, 1 on timeout.
            statement = "SELECT WAIT_FOR_EXECUTED_GTID_SET(%s, %s)"
            wait = max(1, math.ceil(self._wait_seconds))
        rows = await self._dialect.fetch(connection, statement, (position, wait))
        return bool(rows) and rows[0][0] == 0

    def _skip(self, problem: str) -> None:
        self._skipped_until = time.monotonic() + self._retry_seconds
        self._problem = problem
        logger.warning(
            "history reads use the primary for the next %.0f s, not the read replica: %s",
            self._retry_seconds,
            problem,
        )
