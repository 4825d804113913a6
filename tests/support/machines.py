"""The life cycle the service's Hypothesis state machines share (tests/resolvers/
test_stateful.py): a private history (a MariaDB database next to Redis keys under a
private prefix, or a SQLite file), the machine's components started on it, everything
closed in reverse at teardown, and each step's coroutines run on the machine's own loop."""

from __future__ import annotations

import asyncio
import enum
import secrets
import tempfile
from collections.abc import Coroutine
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from hypothesis.stateful import RuleBasedStateMachine

from store.sql import SqlScoreHistory
from tests.support.shared_services import delete_prefix, mysql_url, private_database, require_redis

T = TypeVar("T")

STEP_SECONDS = 60.0
"""Far above any step's waits (each at most a few seconds), far below the test's timeout."""


class Backend(enum.Enum):
    """The two deployments a machine runs on."""

    REDIS_MARIADB = "Redis + MariaDB"
    EMBEDDED_SQLITE = "embedded + SQLite"


class StoresMachine(RuleBasedStateMachine):
    """A state machine whose service runs on real stores of its `backend`.

    A subclass sets its own state after `super().__init__(name)`, then calls `_open_all`;
    it starts what runs on the history in `_start_components` and stops it in
    `_stop_components`.
    """

    backend: ClassVar[Backend]
    history: SqlScoreHistory

    def __init__(self, name: str) -> None:
        super().__init__()
        self.prefix = f"{name}-{secrets.token_hex(6)}"
        """The Redis key prefix (and the temporary folder's) of this run."""
        self._stack = AsyncExitStack()
        self._runner = asyncio.Runner()

    def _open_all(self) -> None:
        """Open the history and start the components; on failure close what was opened."""
        try:
            self._run(self._open())
        except BaseException:
            self._close()
            raise

    async def _open(self) -> None:
        if self.backend is Backend.REDIS_MARIADB:
            await require_redis()
            self._stack.push_async_callback(self._delete_keys)
            database = await self._stack.enter_async_context(private_database())
            url = mysql_url(database)
        else:
            directory = self._stack.enter_context(
                tempfile.TemporaryDirectory(prefix=f"{self.prefix}-")
            )
            url = f"sqlite+aiosqlite:///{Path(directory) / 'leaderboard.db'}"
        self.history = SqlScoreHistory(url)
        await self.history.connect()
        self._stack.push_async_callback(self.history.close)
        await self.history.migrate()
        await self._start_components()
        self._stack.push_async_callback(self._stop_components)

    async def _delete_keys(self) -> None:
        """Delete this run's Redis keys (at teardown, and when a step empties Redis)."""
        await delete_prefix(self.prefix)

    async def _start_components(self) -> None:
        """Start what the service runs on (`self.history` is open)."""
        raise NotImplementedError

    async def _stop_components(self) -> None:
        """Stop what `_start_components` started."""
        raise NotImplementedError

    def teardown(self) -> None:
        self._close()

    def _close(self) -> None:
        try:
            self._run(self._stack.aclose())
        finally:
            self._runner.close()

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run one step's coroutine on the machine's loop, failing it if it hangs."""
        return self._runner.run(_bounded(coroutine))


async def _bounded(coroutine: Coroutine[Any, Any, T]) -> T:
    # A step that never returns would outlive pytest-timeout: its failure is caught by
    # Hypothesis, which then replays the example to shrink it, with no timeout left (a CI run
    # hung for an hour that way). A hung step is an ordinary, bounded failure instead.
    try:
        async with asyncio.timeout(STEP_SECONDS):
            return await coroutine
    except TimeoutError as error:
        raise AssertionError(f"a step did not finish within {STEP_SECONDS} s") from error
