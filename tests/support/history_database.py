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


async def unregistered_rows(url: str) -> list[tuple[object, ...]]:
    """(username, board, period) of each `score_events` row the player registry does not
    list (migration 11): rows an erasure would miss. Empty whenever the registry is right."""
    return await query_history(
        url,
        "SELECT e.username, e.board, e.period FROM score_events e WHERE NOT EXISTS ("
        "SELECT 1 FROM player_periods r WHERE r.username = e.username "
        "AND r.board = e.board AND r.period = e.period)",
    )


async def registered_players(url: str) -> set[tuple[object, ...]]:
    """Every (username, board, period) the player registry lists."""
    rows = await query_history(url, "SELECT username, board, period FROM player_periods")
    return {tuple(row) for row in rows}


async def history_epoch(url: str) -> int:
    """The erasure epoch (migration 11)."""
    ((epoch,),) = await query_history(url, "SELECT epoch FROM history_epoch WHERE id = 1")
    return int(str(epoch))
