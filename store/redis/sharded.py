"""Boards spread over several sorted sets (`Board.shards` > 1): reads merged across the
shards, and board-wide ranks for the outcomes of a write.

A player lives in one shard (`Board.shard_of`); a script sees one shard, so a rank is
1 + the count of higher scores summed over every shard, read in one pipelined round
(one round trip per node on a cluster). The arithmetic on top is in ranks.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Collection, Sequence

from store.board_kinds import TieBreak
from store.errors import RankingNotLoaded
from store.models import IncrementOutcome, PageKey, RankedPlayer, RankingPage
from store.redis.connection import AnyPipeline, Connection, text
from store.redis.earliest import ShardedEarliest
from store.redis.keys import KeyLayout, total_of
from store.redis.ranks import (
    order,
    rank_by_position,
    replay_ranks,
    scores_of,
    window_sides,
)
from store.redis.scripts import Scripts


class ShardedBoards:
    """Reads of sharded boards, and board-wide ranks for their increments."""

    def __init__(self, connection: Connection, layout: KeyLayout, scripts: Scripts) -> None:
        self._connection = connection
        self._layout = layout
        self._scripts = scripts
        self._earliest = ShardedEarliest(connection, layout, scripts)

    def _unique(self, board: str) -> bool:
        """Whether the board ranks ties by who got there first (earliest.py serves it)."""
        return self._layout.board(board).tie_break is TieBreak.EARLIEST

    async def top(self, board: str, period: str, limit: int, offset: int) -> list[RankedPlayer]:
        """Each shard's first offset+limit players, merged: one parallel round.

        Every player above one of the page is in its own shard's first offset+limit, so
        positions (and ranks) in the merge are exact.
        """
        if self._unique(board):
            return await self._earliest.top(board, period, limit, offset)
        if limit == 0:
            await self.player_count(board, period)  # still refuses an unloaded period
            return []
        shard_keys = self._layout.all_shard_keys(board, period)

        def commands(pipe: AnyPipeline) -> None:
            for keys in shard_keys:
                pipe.exists(keys.loaded)
                pipe.zrange(keys.ranking, 0, offset + limit - 1, withscores=True)
                pipe.zcard(keys.ranking)

        replies = await self._connection.pipelined(commands)
        if not all(replies[0::3]):
            raise RankingNotLoaded(board, period)
        sign = self._layout.board(board).sign
        merged = [
            (text(member), total_of(stored) if sign < 0 else int(stored))
            for entries in replies[1::3]
            for member, stored in entries
        ]
        merged.sort(key=ordering(sign))
        count = sum(int(players) for players in replies[2::3])
        return rank_by_position(merged, offset, limit, first_rank=None, player_count=count)

    async def player(self, board: str, period: str, username: str) -> RankedPlayer | None:
        """The player's score from its shard, its rank from every shard's count above."""
        if self._unique(board):
            return await self._earliest.player(board, period, username)
        found = await self._scripts.player(board, period, username)
        if found is None:
            return None
        higher, count = await self._counts(board, period, [found.score])
        return RankedPlayer(
            username=username, score=found.score, rank=1 + higher[found.score], player_count=count
        )

    async def neighborhood(
        self, board: str, period: str, username: str, radius: int, *, fill: bool = False
    ) -> list[RankedPlayer]:
        """The player's score from its shard, then each shard's players around that place
        (and how many come before it there), merged: two parallel rounds, a third only
        when the first player shown ties with the one above it.

        With `fill` each shard gives up to 2 * radius on each side (2 * radius + 1 above,
        for the tie check), enough for a window shifted as far as it can go."""
        if self._unique(board):
            return await self._earliest.neighborhood(board, period, username, radius, fill=fill)
        found = await self._scripts.player(board, period, username)
        if found is None:
            return []
        score = found.score
        reach = 2 * radius if fill else radius
        # One extra player above, to tell whether the first one shown ties with it.
        shards = await self._scripts.shard_around(
            board, period, score, username, before=reach + 1, after=reach
        )
        position = sum(shard.position for shard in shards)
        count = sum(shard.players for shard in shards)
        key = ordering(self._layout.board(board).sign)
        before = sorted((entry for shard in shards for entry in shard.before), key=key)
        after = sorted((entry for shard in shards for entry in shard.after), key=key)
        above, below = window_sides(radius, position, count - position - 1, fill=fill)
        shown_before = before[len(before) - above :] if above else []
        window = [*shown_before, (username, score), *after[:below]]
        first_position = position - len(shown_before)
        first_rank = first_position + 1
        if len(before) > len(shown_before) and before[-len(shown_before) - 1][1] == window[0][1]:
            first_score = window[0][1]
            first_rank = 1 + (await self.higher_counts(board, period, [first_score]))[first_score]
        return rank_by_position(
            window, 0, len(window), first_rank=first_rank, start=first_position, player_count=count
        )

    async def players(
        self, board: str, period: str, usernames: Sequence[str]
    ) -> list[RankedPlayer]:
        """The named players' scores from their shards, then the counts above those scores
        from every shard: two pipelined rounds (one round trip per node each), whatever
        the number of names."""
        if self._unique(board):
            return await self._earliest.players(board, period, usernames)
        by_shard: dict[int, list[str]] = {}
        board_value = self._layout.board(board)
        for username in usernames:
            by_shard.setdefault(board_value.shard_of(username), []).append(username)
        touched = [
            (self._layout.keys(board, period, shard), names) for shard, names in by_shard.items()
        ]

        def commands(pipe: AnyPipeline) -> None:
            for keys, names in touched:
                pipe.exists(keys.loaded)
                pipe.zmscore(keys.ranking, names)

        replies = await self._connection.pipelined(commands)
        if not all(replies[0::2]):
            raise RankingNotLoaded(board, period)
        sign = board_value.sign
        found = [
            (username, total_of(stored) if sign < 0 else int(stored))
            for (_, names), scores in zip(touched, replies[1::2], strict=True)
            for username, stored in zip(names, scores, strict=True)
            if stored is not None
        ]
        if not found:
            await self.player_count(board, period)  # still refuses an unloaded period
            return []
        higher, count = await self._counts(board, period, sorted({score for _, score in found}))
        players = [
            RankedPlayer(username=username, score=score, rank=1 + higher[score], player_count=count)
            for username, score in found
        ]
        players.sort(key=lambda player: (player.rank, player.username))
        return players

    async def page(self, board: str, period: str, first: int, after: PageKey | None) -> RankingPage:
        """Every shard's page after the place, merged (page.lua: one round)."""
        return await self._scripts.page(board, period, first, after)

    async def player_count(self, board: str, period: str) -> int:
        """The shards' ZCARDs summed, in one pipelined round."""
        shard_keys = self._layout.all_shard_keys(board, period)

        def commands(pipe: AnyPipeline) -> None:
            for keys in shard_keys:
                pipe.exists(keys.loaded)
                pipe.zcard(keys.ranking)

        replies = await self._connection.pipelined(commands)
        if not all(replies[0::2]):
            raise RankingNotLoaded(board, period)
        return sum(int(count) for count in replies[1::2])

    async def with_board_ranks(
        self, outcomes: list[IncrementOutcome], *, boards: Collection[str] | None = None
    ) -> list[IncrementOutcome]:
        """Outcomes of sharded boards with board-wide ranks (a script sees one shard); with
        `boards`, only those of these boards, and theirs also on an unsharded board
        whose script did not rank (a rank of 0: spread.py).

        The counts of higher scores are read after the whole batch; each increment's
        rank at its turn in the batch is derived from them by replaying the batch's own
        players (the only ones whose scores changed within the call).
        """
        by_period: dict[tuple[str, str], list[int]] = {}
        unranked: set[tuple[str, str]] = set()
        for index, outcome in enumerate(outcomes):
            increment = outcome.increment
            if boards is not None and increment.board not in boards:
                continue
            key = (increment.board, increment.period)
            if self._layout.board(increment.board).shards > 1:
                by_period.setdefault(key, []).append(index)
            elif boards is not None:
                by_period.setdefault(key, []).append(index)
                if outcome.rank == 0:
                    unranked.add(key)
        by_period = {
            key: indexes
            for key, indexes in by_period.items()
            if key in unranked or self._layout.board(key[0]).shards > 1
        }
        if not by_period:
            return outcomes
        unique = {key: indexes for key, indexes in by_period.items() if self._unique(key[0])}
        shared = {key: indexes for key, indexes in by_period.items() if key not in unique}
        counts, unique_ranked = await asyncio.gather(
            asyncio.gather(
                *(
                    self.higher_counts(board, period, scores_of(outcomes[i] for i in indexes))
                    for (board, period), indexes in shared.items()
                )
            ),
            asyncio.gather(
                *(
                    self._earliest.with_board_ranks(board, period, [outcomes[i] for i in indexes])
                    for (board, period), indexes in unique.items()
                )
            ),
        )
        ranked = list(outcomes)
        for indexes, period_ranked in zip(unique.values(), unique_ranked, strict=True):
            for index, outcome in zip(indexes, period_ranked, strict=True):
                ranked[index] = outcome
        for (board, _), indexes, higher in zip(shared.keys(), shared.values(), counts, strict=True):
            period_outcomes = [outcomes[i] for i in indexes]
            if self._layout.board(board).sign > 0:
                # ASC: the arithmetic of ranks.py, on negated scores ("higher is better").
                negated = replay_ranks(
                    [_negated(outcome) for outcome in period_outcomes],
                    {-score: count for score, count in higher.items()},
                )
                period_ranked = [
                    dataclasses.replace(original, rank=new.rank, previous_rank=new.previous_rank)
                    for original, new in zip(period_outcomes, negated, strict=True)
                ]
            else:
                period_ranked = replay_ranks(period_outcomes, higher)
            for index, outcome in zip(indexes, period_ranked, strict=True):
                ranked[index] = outcome
        return ranked

    async def before_counts(
        self, board: str, period: str, places: list[tuple[int, str]]
    ) -> dict[tuple[int, str], int]:
        """For each order key (stored score, member) of an EARLIEST board, how many players
        of the period come before it (before.lua on every shard, one round)."""
        before, _ = await self._earliest.counts(board, period, places)
        return before

    async def higher_counts(self, board: str, period: str, scores: list[int]) -> dict[int, int]:
        """For each score, how many players of the period have a strictly better one
        (higher; lower on ASC boards)."""
        higher, _ = await self._counts(board, period, scores, with_total=False)
        return higher

    async def _counts(
        self, board: str, period: str, scores: list[int], *, with_total: bool = True
    ) -> tuple[dict[int, int], int]:
        """For each score, how many players have a strictly better one; and how many
        players the period has (0 without `with_total`): one pipelined round."""
        shard_keys = self._layout.all_shard_keys(board, period)
        sign = self._layout.board(board).sign

        def commands(pipe: AnyPipeline) -> None:
            for keys in shard_keys:
                pipe.exists(keys.loaded)
                # The write path's ranks (with_board_ranks) need no total: not one more command.
                if with_total:
                    pipe.zcard(keys.ranking)
                for score in scores:
                    pipe.zcount(keys.ranking, "-inf", f"({sign * score}")

        replies = await self._connection.pipelined(commands)
        totals = dict.fromkeys(scores, 0)
        players = 0
        first = 2 if with_total else 1
        step = first + len(scores)
        for at in range(0, len(replies), step):
            if not replies[at]:
                raise RankingNotLoaded(board, period)
            if with_total:
                players += int(replies[at + 1])
            for score, count in zip(scores, replies[at + first : at + step], strict=True):
                totals[score] += int(count)
        return totals, players


def ordering(sign: int) -> Callable[[tuple[str, int]], tuple[int, str]]:
    """Sort key of (username, score) entries in a board's order: `ranks.order` on DESC
    boards, (score, username) on ASC ones."""
    if sign < 0:
        return order
    return lambda entry: (entry[1], entry[0])


def _negated(outcome: IncrementOutcome) -> IncrementOutcome:
    previous = outcome.previous_score
    return dataclasses.replace(
        outcome, score=-outcome.score, previous_score=None if previous is None else -previous
    )
