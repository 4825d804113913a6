"""The contract's input rules; each failure is a BAD_USER_INPUT naming the argument."""

from __future__ import annotations

import re
import unicodedata

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
