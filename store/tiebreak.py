"""EARLIEST tie-break: sorted-set scores and members that rank equal scores by who got there first.

Every ranking stores scores so that ascending order is the board's order (negated on DESC
boards, as today; as they are on ASC boards) and reads with ascending `ZRANGE`. Redis
orders equal scores by member bytes, so on an EARLIEST board the member is the instant the
player reached the score, as 16 lowercase hex digits of microseconds since the Unix epoch
(fixed width: byte order is numeric order), followed by the username. The score stays the
exact score (doubles hold every integer within ±(2^53 - 1)); no instant is ever folded into
it. A hash `username -> instant` finds a player's member. The instant comes from Redis
`TIME` inside the write script, made strictly increasing per ranking key
(`next_instant`), so two players can never share one and every rank is unique. The Lua
scripts mirror these functions; docs/boards.md gives the whole design.

Standard library only.
"""

from __future__ import annotations

import re

from store.board_model import SortOrder, TieBreak, ranks_before
from store.models import MAX_EXACT_SCORE

INSTANT_DIGITS = 16
"""Hex digits of the instant at the start of a member: 64 bits of microseconds."""

MAX_INSTANT = 2**53 - 1
"""Largest instant: Lua reads the prefix back as a double (exact to 2^53 µs, year 2255)."""

_INSTANT = re.compile(r"[0-9a-f]{16}", re.ASCII)


def stored_score(order: SortOrder, score: int) -> int:
    """The sorted-set score of `score`: ascending stored order is the board's order."""
    if abs(score) > MAX_EXACT_SCORE:
        raise ValueError(f"score {score} is beyond ±{MAX_EXACT_SCORE}")
    # `0 - 0` is 0, never -0.0, so DESC boards store no negative zero.
    return 0 - score if order is SortOrder.DESC else score


def score_from_stored(order: SortOrder, stored: float) -> int:
    """The score a stored sorted-set score stands for (its inverse)."""
    score = int(stored)
    return 0 - score if order is SortOrder.DESC else score


def encode_instant(instant_us: int) -> str:
    """The fixed-width prefix of an instant (microseconds since the Unix epoch)."""
    if not 0 <= instant_us <= MAX_INSTANT:
        raise ValueError(f"instant {instant_us} is outside 0..{MAX_INSTANT} microseconds")
    return f"{instant_us:016x}"


def encode_member(tie_break: TieBreak, instant_us: int, username: str) -> str:
    """The sorted-set member of a player: the username, behind its instant on EARLIEST boards."""
    if tie_break is TieBreak.SHARED:
        return username
    return encode_instant(instant_us) + username


def decode_member(tie_break: TieBreak, member: str) -> tuple[int, str]:
    """The instant (0 on SHARED boards) and username of a sorted-set member."""
    if tie_break is TieBreak.SHARED:
        return 0, member
    prefix = member[:INSTANT_DIGITS]
    if not _INSTANT.fullmatch(prefix) or len(member) == INSTANT_DIGITS:
        raise ValueError(f"{member!r} is not an EARLIEST member (16 hex digits, a username)")
    return int(prefix, 16), member[INSTANT_DIGITS:]


def next_instant(now_us: int, last_us: int | None) -> int:
    """The instant of the next write to a ranking: Redis' clock, but always after the last
    one given out for that key (so equal clocks and a clock stepping back never tie)."""
    return now_us if last_us is None else max(now_us, last_us + 1)


def ranks_ahead(
    order: SortOrder,
    tie_break: TieBreak,
    first: tuple[int, int, str],
    second: tuple[int, int, str],
) -> bool:
    """The board's order, written out: whether player `first` (score, instant, username)
    is listed before `second`. Better score first; then, on EARLIEST boards, the earlier
    instant; then the username (code points, i.e. UTF-8 bytes)."""
    score_a, instant_a, name_a = first
    score_b, instant_b, name_b = second
    if score_a != score_b:
        return ranks_before(order, score_a, score_b)
    if tie_break is TieBreak.EARLIEST and instant_a != instant_b:
        return instant_a < instant_b
    return name_a < name_b
