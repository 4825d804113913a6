"""Reading the history database behind the service's back, to check what it really stored."""

from __future__ import annotations

import sqlite3
from urllib.parse import urlsplit

import aiomysql


async def query_history(url: str, statement: str) -> list[tuple[object, ...]]:
    """Run a statement on the database of a `databases` URL (MySQL/MariaDB or SQLite)."""
    if url.startswith("sqlite"):
        connection = sqlite3.connect(url.split(":///", 1)[1])
        try:
            rows = list(connection.execute(statement).fetchall())
            connection.commit()  # a changing statement counts too
            return rows
        finally:
            connection.close()
    parts = urlsplit(url)
    mysql = await aiomysql.connect(
        host=parts.hostname,
        port=parts.port or 3306,
        user=parts.username,
        password=parts.password or "",
        db=parts.path.lstrip("/"),
        autocommit=True,
    )
    try:
        async with mysql.cursor() as cursor:
            await cursor.execute(statement)
            return list(await cursor.fetchall())
    finally:
        mysql.close()


async def history_totals(url: str) -> dict[str, int]:
    """Per-player sums of every stored event."""
    rows = await query_history(
        url, "SELECT username, SUM(delta) FROM score_events GROUP BY username"
    )
    return {str(username): int(str(total)) for username, total in rows}


async def history_event_ids(url: str) -> set[str]:
    """Every stored event id."""
    return {
        str(event_id)
        for (event_id,) in await query_history(url, "SELECT event_id FROM score_events")
    }
