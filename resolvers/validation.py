"""The contract's input rules; each failure is a BAD_USER_INPUT naming the argument."""

from __future__ import annotations

import re
import unicodedata

import orjson

from resolvers.errors import bad_input
from store.boards import Board
from store.models import MAX_EXACT_SCORE

USERNAME_MAX_LENGTH = 64
EVENT_ID_PATTERN = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
_USERNAME_PUNCTUATION = frozenset("_-.")
# Names that are plainly valid: ASCII letters, digits and the punctuation, of a valid length.
# ASCII text is always in normal form C, so these need neither the per-character scan nor
# the normalisation; everything else takes the full check (and its error messages).
_PLAIN_USERNAME = re.compile(rf"[A-Za-z0-9_.-]{{1,{USERNAME_MAX_LENGTH}}}")

TOP_LIMIT_MAX = 100
RADIUS_MAX = 50


def username(value: str) -> str:
    """1..64 characters: letters, digits, '_', '-', '.'; in Unicode normal form C."""
    # ASCII letters and digits only (most names): three C calls, no match object; once per
    # ingested event. ("".isalnum() is false: the empty name takes the full check.)
    if len(value) <= USERNAME_MAX_LENGTH and value.isascii() and value.isalnum():
        return value
    if _PLAIN_USERNAME.fullmatch(value):
        return value
    if not 1 <= len(value) <= USERNAME_MAX_LENGTH:
        raise bad_input(f"username must be 1..{USERNAME_MAX_LENGTH} characters long")
    for character in value:
        if not (character.isalpha() or character.isdecimal() or character in _USERNAME_PUNCTUATION):
            raise bad_input(
                f"username may hold only letters, digits, '_', '-' and '.', not {character!r}"
            )
    # Two spellings of one name (composed or not) must not become two players.
    if unicodedata.normalize("NFC", value) != value:
        raise bad_input("username must be in Unicode normal form C")
    return value


def delta(value: int, max_delta: int) -> int:
    """A non-zero integer within ±max_delta."""
    if value == 0:
        raise bad_input("delta must not be zero")
    if abs(value) > max_delta:
        raise bad_input(f"delta must be within ±{max_delta}")
    return value


def score(value: int, board: Board) -> int:
    """A submission within ±(2^53 - 1) and the board's minScore..maxScore."""
    if abs(value) > MAX_EXACT_SCORE:
        raise bad_input(f"score must be within ±{MAX_EXACT_SCORE}")
    if board.min_score is not None and value < board.min_score:
        raise bad_input(f"score {value} is below minScore {board.min_score} of board {board.id!r}")
    if board.max_score is not None and value > board.max_score:
        raise bad_input(f"score {value} is above maxScore {board.max_score} of board {board.id!r}")
    return value


def event_id(value: str | None) -> str | None:
    """1..128 characters: letters, digits, '_', '-', '.', ':'."""
    if value is not None and not EVENT_ID_PATTERN.fullmatch(value):
        raise bad_input("eventId must be 1..128 ASCII letters, digits, '_', '-', '.' or ':'")
    return value


def writer(writer_id: str | None, sequence: int | None) -> tuple[str, int] | None:
    """Both or neither: a writerId as an eventId is spelled, a sequence 0..2^53 - 1."""
    if writer_id is None and sequence is None:
        return None
    if writer_id is None or sequence is None:
        raise bad_input("writerId and sequence go together: send both or neither")
    if not EVENT_ID_PATTERN.fullmatch(writer_id):
        raise bad_input("writerId must be 1..128 ASCII letters, digits, '_', '-', '.' or ':'")
    if not 0 <= sequence <= MAX_EXACT_SCORE:
        raise bad_input(f"sequence must be 0..{MAX_EXACT_SCORE}")
    return writer_id, sequence


def period(board: Board, value: str | None, now: float) -> str:
    """The period asked for, or the one that contains `now` (a Unix time) when none is."""
    if value is None:
        return board.period_at_timestamp(now)
    if not board.is_valid_period(value):
        examples = {
            "never": "all",
            "daily": "2026-11-23",
            "weekly": "2026-W48",
            "monthly": "2026-11",
        }
        raise bad_input(
            f"period {value!r} is not a period of board {board.id!r} "
            f"({board.reset.value}, e.g. {examples[board.reset.value]!r})"
        )
    return value


def limit(value: int) -> int:
    """1..100 players."""
    if not 1 <= value <= TOP_LIMIT_MAX:
        raise bad_input(f"limit must be 1..{TOP_LIMIT_MAX}")
    return value


def offset(value: int) -> int:
    """0 or more."""
    if value < 0:
        raise bad_input("offset must be 0 or more")
    return value


def radius(value: int) -> int:
    """0..50 players on each side."""
    if not 0 <= value <= RADIUS_MAX:
        raise bad_input(f"radius must be 0..{RADIUS_MAX}")
    return value


def batch_size(count: int, maximum: int) -> int:
    """1..maximum increments in one call."""
    if not 1 <= count <= maximum:
        raise bad_input(f"increments must hold 1..{maximum} items, not {count}")
    return count


PLAYERS_MAX = 100
PAGE_MAX = 100


def usernames(values: list[str]) -> list[str]:
    """1..100 distinct valid usernames."""
    if not 1 <= len(values) <= PLAYERS_MAX:
        raise bad_input(f"usernames must hold 1..{PLAYERS_MAX} names, not {len(values)}")
    if len(set(values)) != len(values):
        raise bad_input("usernames must be distinct")
    for value in values:
        username(value)
    return values


def first(value: int) -> int:
    """1..100 players on a page."""
    if not 1 <= value <= PAGE_MAX:
        raise bad_input(f"first must be 1..{PAGE_MAX}")
    return value


DISPLAY_NAME_MAX_LENGTH = 64
METADATA_MAX_BYTES = 1024
METADATA_MAX_DEPTH = 4
# Characters that reorder the text around them (bidi embeddings, overrides, isolates): a
# name could make a neighbour's row read backwards.
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
# Not printable by Python's rule (format characters), yet part of ordinary names: the
# zero-width joiner of emoji sequences and the non-joiner of Persian and Indic scripts.
_JOINERS = frozenset("\u200c\u200d")


def display_name(value: str) -> str | None:
    """1..64 printable characters (no control or bidi-control character, not only spaces);
    "" clears the name (None)."""
    if value == "":
        return None
    if len(value) > DISPLAY_NAME_MAX_LENGTH:
        raise bad_input(f"displayName must be 1..{DISPLAY_NAME_MAX_LENGTH} characters long")
    for character in value:
        if character in _BIDI_CONTROLS or not (character.isprintable() or character in _JOINERS):
            raise bad_input(
                f"displayName may hold only printable characters, not U+{ord(character):04X}"
            )
    if value.isspace() or not value.strip():
        raise bad_input("displayName must not be only spaces")
    return value


def metadata(value: object) -> str | None:
    """A JSON object of at most 1 KiB serialized and depth 4 (an object in an object... four
    deep); {} clears the metadata (None). The serialized text."""
    if not isinstance(value, dict):
        raise bad_input("metadata must be a JSON object")
    if not value:
        return None
    if _depth(value) > METADATA_MAX_DEPTH:
        raise bad_input(f"metadata must nest at most {METADATA_MAX_DEPTH} levels deep")
    try:
        text = orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError):
        raise bad_input("metadata must be plain JSON") from None
    if len(text) > METADATA_MAX_BYTES:
        raise bad_input(f"metadata must be at most {METADATA_MAX_BYTES} bytes as JSON")
    return text.decode("utf-8")


def _depth(value: object) -> int:
    """How deep objects and arrays nest (a scalar: 0), stopping past the limit."""
    stack: list[tuple[object, int]] = [(value, 1)]
    deepest = 0
    while stack:
        item, depth = stack.pop()
        children = (
            item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        )
        if children is None:
            continue
        deepest = max(deepest, depth)
        if deepest > METADATA_MAX_DEPTH:
            return deepest
        stack.extend((child, depth + 1) for child in children)
    return deepest
