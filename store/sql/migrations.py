"""The loop that applies the schema steps a database lacks (`schema_steps.py` holds them).

Steps are applied in order, each once, under the dialect's migration lock, and recorded in
`schema_version`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Final

from store.sql import schema_steps
from store.sql.dialect import Migration

if TYPE_CHECKING:
    from store.sql.dialect import Dialect

logger = logging.getLogger(__name__)

VERSION_TABLE: Final = Migration(
    version=0,
    mysql=(
        """
        CREATE TABLE IF NOT EXISTS schema_version (
            id TINYINT NOT NULL PRIMARY KEY,
            version INT NOT NULL
        ) ENGINE=InnoDB
        """,
    ),
    sqlite=(
        """
        CREATE TABLE IF NOT EXISTS schema_version (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            version INTEGER NOT NULL
        )
        """,
    ),
)
"""The bookkeeping table itself, created before anything else (not a numbered step)."""


async def migrate(dialect: Dialect, connection: Any) -> None:
    """Apply the steps newer than the database's version, under the dialect's migration lock."""
    async with dialect.migration_lock(connection):
        for statement in dialect.steps(VERSION_TABLE):
            await dialect.execute(connection, statement)
        current = await schema_version(dialect, connection)
        for migration in schema_steps.MIGRATIONS:
            if migration.version <= current:
                continue
            for statement in dialect.steps(migration):
                await dialect.execute(connection, statement)
            await dialect.record_version(connection, migration.version)
            logger.info("history schema migrated to version %d", migration.version)


async def schema_version(dialect: Dialect, connection: Any) -> int:
    """The version the database's schema has reached (0: none yet)."""
    rows = await dialect.fetch(connection, "SELECT version FROM schema_version WHERE id = 1")
    return int(rows[0][0]) if rows else 0
