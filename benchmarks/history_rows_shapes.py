"""The row shapes of `history_rows.py`'s variants: how one benchmark event becomes the row
of a table design (packed or hashed event ids, shorter generated ids, integer ids), and
how values are escaped for LOAD DATA and for aiomysql's bytes."""

from __future__ import annotations

import base64
import hashlib
import uuid
from typing import Any

Row = tuple[Any, ...]


def generated_pack(event_id: str) -> bytes:
    """Lossless: a generated id's hex as bytes; a canonical uuid as its 16 bytes."""
    if event_id.startswith("~"):
        digits = event_id[1:]
        return b"~" + bytes.fromhex(digits if len(digits) % 2 == 0 else "0" + digits)
    if len(event_id) == 36 and event_id[8] == "-":
        return b"\x00" + uuid.UUID(event_id).bytes
    return event_id.encode()


def digest(event_id: str) -> bytes:
    """A 16-byte BLAKE2b digest of an event id."""
    return hashlib.blake2b(event_id.encode(), digest_size=16).digest()


def packed(row: Row) -> Row:
    """The row with its event id packed (`generated_pack`)."""
    return (*row[:4], generated_pack(row[4]), *row[5:])


def hashed(row: Row) -> Row:
    """The row with its event id's digest appended (the `event_key` column)."""
    return (*row, digest(row[4]))


def short_id(row: Row) -> Row:
    """The row with today's shorter generated id."""
    # `~` + the 64-bit instance prefix in 11 base64url characters (not 16 hex) + the counter.
    event_id: str = row[4]
    prefix, counter = event_id[1:17], event_id[17:]
    short = base64.urlsafe_b64encode(bytes.fromhex(prefix)).rstrip(b"=").decode()
    return (*row[:4], f"~{short}{counter}", *row[5:])


def integer_ids(row: Row) -> Row:
    """The row with integer board and player ids."""
    # The lookups (board and player name -> id) are not counted: MariaDB's side only.
    return (1, row[1], int(row[2].removeprefix("player").removeprefix("jügador")), *row[3:])


def escape_field(value: Any) -> str:
    """A value as a LOAD DATA field (tab-separated, `\\N` for NULL)."""
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "1" if value else "0"
    text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def escape_bytes(connection: Any) -> None:
    """aiomysql's own bytes escaping calls a name pymysql 2.2 no longer has: hex literals."""
    escape = connection.escape

    def patched(value: Any) -> str:
        if isinstance(value, bytes):
            return "X'" + value.hex() + "'"
        return str(escape(value))

    connection.escape = patched
