"""store/sql/literals.py: the INSERT text is the one the driver builds (test_mysql.py writes
hostile strings through MariaDB and reads them back)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiomysql.connection import Connection
from aiomysql.cursors import Cursor
from hypothesis import given
from hypothesis import strategies as st

from store.sql.dialect import COLUMN_COUNT
from store.sql.literals import literals, quoted
from store.sql.mysql import _events_insert

pytestmark = pytest.mark.unit

# The characters the escaping is about, drawn often; then anything Hypothesis finds.
_SPECIAL = "\0\\\n\r\x1a\"'%`\t\b\x00\x7f\u2028"
TEXT = st.text(alphabet=st.one_of(st.sampled_from(_SPECIAL), st.characters()))
VALUE = st.one_of(TEXT, st.integers(), st.booleans(), st.none())


def driver_mogrify(template: str, values: list[Any]) -> str:
    """The statement aiomysql's cursor sends, on a connection as the service's is after
    connecting (utf8mb4, no NO_BACKSLASH_ESCAPES); the connection is never opened."""
    connection = Connection(charset="utf8mb4", loop=asyncio.new_event_loop())
    connection.server_status = 0
    try:
        return str(Cursor(connection).mogrify(template, values))
    finally:
        connection._loop.close()


@given(TEXT)
def test_a_string_is_quoted_as_the_driver_quotes_it(value: str) -> None:
    assert quoted(value) == driver_mogrify("%s", [value])
    assert literals([(value,)]) == (quoted(value),)


@given(st.lists(st.tuples(*[VALUE] * COLUMN_COUNT), min_size=1, max_size=5))
def test_the_insert_is_the_statement_the_driver_builds(rows: list[tuple[Any, ...]]) -> None:
    template = _events_insert(len(rows))
    flat = [value for row in rows for value in row]
    assert template % literals(rows) == driver_mogrify(template, flat)


def test_ints_bools_and_none() -> None:
    assert literals([(0, -(2**63), 2**64, True, False, None)]) == (
        0,
        -(2**63),
        2**64,
        "1",
        "0",
        "NULL",
    )
    placeholders = "%s,%s,%s"  # as the INSERT's template formats them
    assert placeholders % literals([(True, 12, None)]) == "1,12,NULL"


@pytest.mark.parametrize("value", [1.5, b"bytes", object()])
def test_a_value_of_another_type_is_refused(value: object) -> None:
    # The driver would write these; a history row never holds one, and a new column's type
    # must come with its literal here.
    with pytest.raises(TypeError):
        literals([("fine", value)])
