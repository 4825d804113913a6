"""Paging cursors of `ranking`: the one codec of their format.

A cursor is opaque to clients: URL-safe base64 (unpadded) of the JSON array
`[1, board, period, stored score, member]`, the order key (store.models.PageKey) of the
last player a page showed, with the board period it belongs to. Not an offset: the next
page starts right after that place in the ranking's order, so a player whose score does
not change is neither skipped nor repeated while others move. A cursor that does not
decode, or names another board or period, is refused with BAD_USER_INPUT.
"""

from __future__ import annotations

import base64
import binascii

import orjson

from resolvers.errors import bad_input
from store.models import MAX_EXACT_SCORE, PageKey

_VERSION = 1
MAX_CURSOR_CHARS = 512
"""Longer than any cursor this codec writes (a member is at most a few hundred bytes)."""
_MAX_MEMBER_CHARS = 128


def encode(board: str, period: str, key: PageKey) -> str:
    """The cursor of one player's place in a board period's ranking."""
    stored, member = key
    payload = orjson.dumps([_VERSION, board, period, stored, member])
    return base64.urlsafe_b64encode(payload).rstrip(b"=").decode("ascii")


def decode(cursor: str, board: str, period: str) -> PageKey:
    """The order key of a cursor made for this board period, else BAD_USER_INPUT."""
    if len(cursor) > MAX_CURSOR_CHARS:
        raise bad_input("after is not a cursor of this ranking")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = orjson.loads(raw)
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise bad_input("after is not a cursor of this ranking") from None
    if (
        not isinstance(value, list)
        or len(value) != 5
        or value[0] != _VERSION
        or not isinstance(value[3], int)
        or isinstance(value[3], bool)
        or abs(value[3]) > MAX_EXACT_SCORE
        or not isinstance(value[4], str)
        or not 1 <= len(value[4]) <= _MAX_MEMBER_CHARS
    ):
        raise bad_input("after is not a cursor of this ranking")
    if value[1] != board or value[2] != period:
        raise bad_input(
            f"after is a cursor of board {value[1]!r} period {value[2]!r}, not of "
            f"board {board!r} period {period!r} (pass the period to keep paging it)"
        )
    return value[3], value[4]
