"""The MySQL dialect's INSERT (store/sql/literals.py builds its text) on the real MariaDB: hostile
strings written through `append` read back unchanged."""

from __future__ import annotations

from urllib.parse import urlsplit

import aiomysql
import pytest

from store.models import ScoreEvent
from store.sql import SqlScoreHistory
from store.sql.dialect import event_row
from store.sql.mysql import MySqlDialect
from store.sql.registry import PlayerRegistry
from tests.support.history_database import query_history

pytestmark = pytest.mark.integration

HOSTILE_TEXT = [
    "o'brien",
    'say "hi"',
    "back\\slash",
    "trailing\\",
    "nul\0inside",
    "\0",
    "line\nfeed\rreturn",
    "ctrl-z\x1a",
    "' OR 1=1; --",
    "\\'",
    "%s%%",
    "emoji \U0001f600\U0001f9d1\u200d\U0001f4bb",
    "\U0001d49c\u0301李",
]
# board, period, event ids and writer ids are ASCII columns: the ASCII part of the above.
HOSTILE_ASCII = [text for text in HOSTILE_TEXT if text.isascii()]


async def test_hostile_strings_round_trip_through_mariadb(mysql_database_url: str) -> None:
    events = [
        ScoreEvent(
            board=HOSTILE_ASCII[index % len(HOSTILE_ASCII)],
            period=f"p'\\{index}",
            username=username,
            delta=index - 5,
            event_id=HOSTILE_ASCII[(index + 3) % len(HOSTILE_ASCII)] + f"#{index}",
            client_event_id=index % 2 == 0,
            created_at_ms=2**62 + index,
            presence=-1 if index % 3 == 0 else 1,
            applied_at_us=None if index % 4 == 0 else index,
            id_life=index,
            writer_id=None if index % 5 == 0 else HOSTILE_ASCII[index % len(HOSTILE_ASCII)],
            sequence=None if index % 5 == 0 else 2**53 - index,
        )
        for index, username in enumerate(HOSTILE_TEXT)
    ]
    store = SqlScoreHistory(mysql_database_url)
    await store.connect()
    await store.migrate()
    try:
        await store.append(events)
        await store.append(events)  # a replay stores nothing twice
    finally:
        await store.close()
    stored = await query_history(
        mysql_database_url,
        "SELECT board, period, username, delta, event_id, client_event_id, created_at_ms, "
        "applied_at_us, presence, id_life, writer_id, writer_sequence FROM score_events "
        "ORDER BY id",
    )
    assert [tuple(row) for row in stored] == [
        (*event_row(event)[:5], int(event.client_event_id), *event_row(event)[6:])
        for event in events
    ]
    writers = await query_history(
        mysql_database_url, "SELECT board, period, writer_id, sequence FROM writer_sequences"
    )
    assert sorted(tuple(row) for row in writers) == sorted(
        (event.board, event.period, event.writer_id, event.sequence)
        for event in events
        if event.writer_id is not None
    )


async def test_a_connection_without_backslash_escapes_gets_the_drivers_text(
    mysql_database_url: str,
) -> None:
    # The service's session never sets NO_BACKSLASH_ESCAPES; were it set, a backslash
    # escape would be read as a backslash: the dialect must fall back to the driver's
    # quote doubling.
    store = SqlScoreHistory(mysql_database_url)
    await store.connect()
    await store.migrate()
    await store.close()
    parts = urlsplit(mysql_database_url)
    connection = await aiomysql.connect(
        host=parts.hostname,
        port=parts.port or 3306,
        user=parts.username,
        password=parts.password or "",
        db=parts.path.lstrip("/"),
        charset="utf8mb4",
        autocommit=True,
    )
    events = [
        ScoreEvent(
            board="b",
            period="p",
            username=username,
            delta=1,
            event_id=f"e{index}",
            client_event_id=False,
            created_at_ms=0,
        )
        for index, username in enumerate(HOSTILE_TEXT)
    ]
    try:
        async with connection.cursor() as cursor:
            await cursor.execute("SET SESSION sql_mode = 'NO_BACKSLASH_ESCAPES'")
        rows = [event_row(event) for event in events]
        await MySqlDialect().insert(connection, rows, [], PlayerRegistry())
    finally:
        connection.close()
    stored = await query_history(
        mysql_database_url, "SELECT username FROM score_events ORDER BY id"
    )
    assert [username for (username,) in stored] == HOSTILE_TEXT


class _Name(str):
    """A str subclass: a type store/sql/literals.py does not take."""


async def test_a_value_of_another_type_goes_through_the_drivers_escaping(
    mysql_database_url: str,
) -> None:
    # literals() knows str, int, bool and None exactly; anything else (a str subclass
    # here) must still be stored, by the driver's escaping, not fail every retry.
    events = [
        ScoreEvent(
            board="b",
            period="p",
            username=_Name(username),
            delta=1,
            event_id=f"n{index}",
            client_event_id=False,
            created_at_ms=0,
        )
        for index, username in enumerate(HOSTILE_TEXT)
    ]
    store = SqlScoreHistory(mysql_database_url)
    await store.connect()
    await store.migrate()
    try:
        await store.append(events)
    finally:
        await store.close()
    stored = await query_history(
        mysql_database_url, "SELECT username FROM score_events ORDER BY id"
    )
    assert [username for (username,) in stored] == HOSTILE_TEXT
