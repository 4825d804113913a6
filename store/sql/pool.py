"""One database's connection pool: every statement runs through `Pool.run`."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from databases import Database

from store.errors import StoreUnavailable
from store.observer import StoreObserver
from store.sql.dialect import DRIVER_ERRORS

logger = logging.getLogger(__name__)

T = TypeVar("T")


class Pool:
    """A connected `databases` pool, named for errors and metrics (`history`, `history-replica`)."""

    def __init__(self, name: str, database: Database, observer: StoreObserver | None) -> None:
        self.name = name
        self._database = database
        self._observer = observer

    async def connect(self, timeout: float) -> None:
        """Open the pool within `timeout` seconds, or raise `StoreUnavailable`."""
        try:
            async with asyncio.timeout(timeout):
                await self._database.connect()
        except (*DRIVER_ERRORS, TimeoutError) as error:
            raise StoreUnavailable(f"{self.name} database unreachable: {error}") from error

    async def close(self, timeout: float) -> None:
        """Close the pool within `timeout` seconds; a failure is logged, not raised."""
        try:
            async with asyncio.timeout(timeout):
                await self._database.disconnect()
        except (*DRIVER_ERRORS, TimeoutError) as error:
            logger.warning("closing the %s connections failed: %s", self.name, error)

    async def run(
        self, what: str, operation: Callable[[Any], Awaitable[T]], *, limit: float | None
    ) -> T:
        """Run `operation` on a driver connection within `limit` seconds (None: no limit).

        The database not answering in time or failing raises `StoreUnavailable`; the
        observer is told the time either way (waiting for a pooled connection included).
        """
        started = time.perf_counter()
        try:
            async with asyncio.timeout(limit):
                async with self._database.connection() as connection:
                    result = await operation(connection.raw_connection)
        except TimeoutError as error:
            self._observe(what, started, failed=True)
            raise StoreUnavailable(f"{self.name} {what}: no answer within {limit} s") from error
        except DRIVER_ERRORS as error:
            self._observe(what, started, failed=True)
            raise StoreUnavailable(f"{self.name} {what} failed: {error}") from error
        self._observe(what, started, failed=False)
        return result

    def _observe(self, what: str, started: float, *, failed: bool) -> None:
        if self._observer is not None:
            seconds = time.perf_counter() - started
            self._observer.observe_store(self.name, what, seconds, failed=failed)
