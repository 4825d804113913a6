"""SQL literals of the history's row values for MySQL/MariaDB, built without the driver.

A batch's INSERT carries every value as a literal in the statement text. PyMySQL's
`cursor.mogrify` builds them through a generic per-value dispatch (`Connection.escape`,
`escape_item`, a `str.translate` over a 128-entry table) that cost ~15 % of the service's
CPU under batched ingest. `literals` builds the same text for the only types a row holds:
the statement MySQL parses is character for character the one the driver would have sent
(tests/store/sql/test_literals.py checks it against PyMySQL's own escaping).

Valid only on a connection without NO_BACKSLASH_ESCAPES (the service's session sql_mode
never sets it; `MySqlDialect` falls back to the driver when the server reports it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Final

# The characters PyMySQL's `escape_string` replaces (its `_escape_table`), with the same
# replacements. utf8mb4 needs no others: no multi-byte character of it contains a byte
# MySQL would read as a quote or backslash.
_ESCAPES: Final = str.maketrans(
    {
        "\0": "\\0",
        "\\": "\\\\",
        "\n": "\\n",
        "\r": "\\r",
        "\x1a": "\\Z",
        '"': '\\"',
        "'": "\\'",
    }
)
# Almost no value needs escaping: one search (in C) is cheaper than a translate.
_NEEDS_ESCAPE: Final = re.compile("[\0\\\\\n\r\x1a\"']")


def quoted(value: str) -> str:
    """A string literal, quoted and escaped as PyMySQL does it."""
    if _NEEDS_ESCAPE.search(value) is None:
        return "'" + value + "'"
    return "'" + value.translate(_ESCAPES) + "'"


def literals(rows: Iterable[tuple[Any, ...]]) -> tuple[str | int, ...]:
    """Every value of `rows`, row by row, as what `%` formats into a `%s` placeholder to
    give its SQL literal: a str quoted and escaped, an int itself (`%s` writes it with
    `int.__str__`), a bool 1 or 0, None NULL. Any other type is a TypeError (the dialect
    then takes the driver's escaping): a new column type belongs here, with its test."""
    search = _NEEDS_ESCAPE.search
    out: list[str | int] = []
    append = out.append
    for row in rows:
        for value in row:
            kind = type(value)
            if kind is str:
                append("'" + value + "'" if search(value) is None else quoted(value))
            elif kind is int:
                append(value)
            elif value is None:
                append("NULL")
            elif kind is bool:
                append("1" if value else "0")
            else:
                raise TypeError(f"no SQL literal for a {kind.__name__} value")
    return tuple(out)
