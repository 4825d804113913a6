"""Rank arithmetic of sharded boards, pure (no Redis): unit-tested on its own.

A shard's script sees one shard only, so board-wide ranks are derived here from what
the shards report: the merged pages of `top` and `neighborhood` (`rank_by_position`)
and the ranks each increment of a batch had at its turn (`replay_ranks`).

Ranks are standard competition ranks: 1 + the number of players with a strictly higher
score; the order is score descending, then username ascending.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

from sortedcontainers import SortedList

from store.models import IncrementOutcome, PageKey, RankedPlayer, RankingPage
from store.tiebreak import encode_instant


def order(entry: tuple[str, int]) -> tuple[int, str]:
    """Sort key of a (username, score) entry in leaderboard order (code point order is
    the UTF-8 byte order Redis uses for ties)."""
    return (-entry[1], entry[0])


def rank_by_position(
    entries: list[tuple[str, int]],
    offset: int,
    limit: int,
    *,
    first_rank: int | None,
    start: int = 0,
    player_count: int = 0,
) -> list[RankedPlayer]:
    """Ranked players from `entries` (in order, entries[0] at 0-based board position
    `start`), those at indexes offset .. offset+limit-1.

    A rank is the position + 1, shared on ties; `first_rank` is the first shown one's
    when known, else the entries begin at the top of the board (every tie visible).
    `player_count` is the period's, for each player's topPercent.
    """
    players = []
    rank = 0
    previous: int | None = None
    for index, (username, score) in enumerate(entries[: offset + limit]):
        if previous is None or score != previous:
            rank = start + index + 1
        if index == 0 and first_rank is not None:
            rank = first_rank
        previous = score
        if index >= offset:
            players.append(
                RankedPlayer(username=username, score=score, rank=rank, player_count=player_count)
            )
    return players


def scores_of(outcomes: Iterable[IncrementOutcome]) -> list[int]:
    """Every score the outcomes' players had before or after, ascending: the scores whose
    count of higher ones `replay_ranks` needs."""
    scores: set[int] = set()
    for outcome in outcomes:
        scores.add(outcome.score)
        if outcome.previous_score is not None:
            scores.add(outcome.previous_score)
    return sorted(scores)


def replay_ranks(
    outcomes: list[IncrementOutcome], higher_after: dict[int, int]
) -> list[IncrementOutcome]:
    """Board-wide ranks of one period's outcomes, in batch order.

    `higher_after[v]` counts the players above v once the batch was applied (for every
    score of `scores_of(outcomes)`). Taking out the batch's own players (at their final
    scores) leaves those the batch did not touch; adding the batch's players at their
    scores of the moment gives the rank each increment had at its turn, as one
    unsharded script call reports it.
    """
    final: dict[str, int] = {}
    initial: dict[str, int | None] = {}
    for outcome in outcomes:
        username = outcome.increment.username
        initial.setdefault(username, outcome.previous_score)
        # A repeated event of a player without a score reports 0 but adds no score.
        if outcome.applied or outcome.previous_score is not None:
            final[username] = outcome.score
    finals = SortedList(final.values())
    current = SortedList(score for score in initial.values() if score is not None)

    def rank(score: int) -> int:
        untouched = higher_after[score] - (len(finals) - int(finals.bisect_right(score)))
        return 1 + untouched + len(current) - int(current.bisect_right(score))

    ranked = []
    for outcome in outcomes:
        if not outcome.applied:
            standing = rank(outcome.score)
            previous = None if outcome.previous_score is None else standing
            ranked.append(dataclasses.replace(outcome, rank=standing, previous_rank=previous))
            continue
        previous_rank = None
        if outcome.previous_score is not None:
            previous_rank = rank(outcome.previous_score)
            current.remove(outcome.previous_score)
        current.add(outcome.score)
        ranked.append(
            dataclasses.replace(outcome, rank=rank(outcome.score), previous_rank=previous_rank)
        )
    return ranked


OrderKey = tuple[int, str]
"""A player's place on an EARLIEST board: (stored score, member), compared as Redis orders
them (str order is code point order, the UTF-8 byte order of members)."""


def unique_keys(
    outcomes: Sequence[IncrementOutcome], sign: int
) -> list[tuple[OrderKey | None, OrderKey | None]]:
    """Each outcome's order keys before and after its write, on an EARLIEST board (sign -1
    on DESC, +1 on ASC): the member moves only when the kept score changed (`instant`),
    else stays the one reached before (`reached_before`). None: no score."""
    keys: list[tuple[OrderKey | None, OrderKey | None]] = []
    for outcome in outcomes:
        username = outcome.increment.username
        before: OrderKey | None = None
        if outcome.previous_score is not None:
            member = encode_instant(outcome.reached_before or 0) + username
            before = (sign * outcome.previous_score, member)
        after = before
        if outcome.changed:
            after = (sign * outcome.score, encode_instant(outcome.instant or 0) + username)
        keys.append((before, after))
    return keys


def replay_unique_ranks(
    outcomes: list[IncrementOutcome],
    keys: Sequence[tuple[OrderKey | None, OrderKey | None]],
    before_after: dict[OrderKey, int],
) -> list[IncrementOutcome]:
    """Board-wide ranks of one EARLIEST period's outcomes, in batch order (`replay_ranks`
    for unique ranks): a rank is 1 + the players ordered before the player's key.

    `keys` are `unique_keys(outcomes)`; `before_after[k]` counts the players ordered before
    k once the batch was applied (every key of `keys`, and `NO_SCORE_KEY`). Taking out the
    batch's own players at their final keys leaves those the batch did not touch; adding
    the batch's players at their keys of the moment gives each write's rank at its turn.
    """
    final: dict[str, OrderKey] = {}
    initial: dict[str, OrderKey | None] = {}
    for outcome, (before, after) in zip(outcomes, keys, strict=True):
        username = outcome.increment.username
        initial.setdefault(username, before)
        if after is not None:
            final[username] = after
    finals = SortedList(final.values())
    current = SortedList(key for key in initial.values() if key is not None)

    def rank(key: OrderKey) -> int:
        untouched = before_after[key] - int(finals.bisect_left(key))
        return 1 + untouched + int(current.bisect_left(key))

    ranked = []
    for outcome, (before, after) in zip(outcomes, keys, strict=True):
        if not outcome.applied:
            standing = rank(before if before is not None else NO_SCORE_KEY)
            previous = None if before is None else standing
            ranked.append(dataclasses.replace(outcome, rank=standing, previous_rank=previous))
            continue
        previous_rank = None
        if before is not None:
            previous_rank = rank(before)
            current.remove(before)
        assert after is not None  # an applied write leaves a score
        current.add(after)
        ranked.append(dataclasses.replace(outcome, rank=rank(after), previous_rank=previous_rank))
    return ranked


NO_SCORE_KEY: OrderKey = (0, "")
"""Where a repeated event of a player without a score is ranked: as a score of 0, ahead of
every member tied at 0 (as write.lua ranks it)."""


def merge_pages(
    shards: Sequence[tuple[int, int, int, list[tuple[PageKey, int, str]]]],
    first: int,
    after: PageKey | None,
    *,
    unique_ranks: bool = False,
) -> RankingPage:
    """A page of the whole ranking from each sorted set's page after the same place.

    Each shard gives (players it holds, how many of them come up to the place, how many
    of them have a strictly lower stored score than the place, its page: ((stored,
    member), score, username) in order). Every player of the merged page is within its own shard's
    first `first` after the place, so the merge by (stored score, member) is exact. The
    first one's rank: 1 + the players with a better stored score when it ties the place,
    else its position + 1 (everything before it is strictly better); the next ones share
    the previous rank on an equal stored score, else take their position + 1. With
    `unique_ranks` (EARLIEST boards: members order ties) every rank is the position + 1.
    """
    total = sum(shard[0] for shard in shards)
    position = sum(shard[1] for shard in shards)
    better = sum(shard[2] for shard in shards)
    merged = sorted((entry for shard in shards for entry in shard[3]), key=lambda e: e[0])
    merged = merged[:first]
    players = []
    rank = 0
    previous: int | None = None
    for index, ((stored, _), score, username) in enumerate(merged):
        if unique_ranks:
            rank = position + index + 1
        elif previous is None:
            rank = 1 + better if after is not None and stored == after[0] else position + 1
        elif stored != previous:
            rank = position + index + 1
        previous = stored
        players.append(RankedPlayer(username=username, score=score, rank=rank, player_count=total))
    return RankingPage(
        players=tuple(players),
        keys=tuple(key for key, _, _ in merged),
        total=total,
        has_next=position + len(merged) < total,
    )


def window_sides(radius: int, above: int, below: int, *, fill: bool) -> tuple[int, int]:
    """How many players a neighbourhood shows above and below its player, who has `above`
    players before and `below` after. Up to `radius` each side; with `fill`, a side cut
    short (the top, the bottom) gives its room to the other, for 2 * radius + 1 players
    whenever there are that many."""
    if not fill:
        return min(radius, above), min(radius, below)
    return min(above, radius + max(0, radius - below)), min(below, radius + max(0, radius - above))
