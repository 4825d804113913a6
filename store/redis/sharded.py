"""Boards spread over several sorted sets (`Board.shards` > 1): reads merged across the
shards, and board-wide ranks for the outcomes of a write.

A player lives in one shard (`Board.shard_of`); a script sees one shard, so a rank is
1 + the count of higher scores summed over every shard, read in one pipelined round
(one round trip per node on a cluster). The arithmetic on top is in ranks.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable

from store.errors import RankingNotLoaded
from store.models import IncrementOutcome, RankedPlayer
from store.redis.connection import AnyPipeline, Connection, text
from store.redis.keys import KeyLayout, total_of
from store.redis.ranks import order, rank_by_position, replay_ranks, scores_of
from store.redis.scripts import Scripts


class ShardedBoards:
    """Reads of sharded boards, and board-wide ranks for their increments."""

    def __init__(self, connection: Connection, layout: KeyLayout, scripts: Scripts) -> None:
        self._connection = connection
        self._layout = layout
        self._scripts = scripts

    async def top(self, board: str, period: str, limit: int, offset: int) -> list[RankedPlayer]:
        """Each shard's first offset+limit players, merged: one parallel round.

        Every player above one of the page is in its own shard's first offset+limit, so
        positions (and ranks) in the merge are exact.
        """
        if limit == 0:
            await self.player_count(board, period)  # still refuses an unloaded period
            return []
        shard_keys = self._layout.all_shard_keys(board, period)

        def commands(pipe: AnyPipeline) -> None:
            for keys in shard_keys:
                pipe.exists(keys.loaded)
                pipe.zrange(keys.ranking, 0, offset + limit - 1, withscores=True)

        replies = await self._connection.pipelined(commands)
        if not all(replies[0::2]):
            raise RankingNotLoaded(board, period)
        sign = self._layout.board(board).sign
        merged = [
            (text(member), total_of(stored) if sign < 0 else int(stored))
            for entries in replies[1::2]
            for member, stored in entries
        ]
        merged.sort(key=ordering(sign))
        return rank_by_position(merged, offset, limit, first_rank=None)

    async def player(self, board: str, period: str, username: str) -> RankedPlayer | None:
        """The player's score from its shard, its rank from every shard's count above."""
        found = await self._scripts.player(board, period, username)
        if found is None:
            return None
        higher = await self.higher_counts(board, period, [found.score])
        return RankedPlayer(username=username, score=found.score, rank=1 + higher[found.score])

    async def neighborhood(
        self, board: str, period: str, username: str, radius: int
    ) -> list[RankedPlayer]:
        """The player's score from its shard, then each shard's players around that place
        (and how many come before it there), merged: two parallel rounds, a third only
        when the first player shown ties with the one above it."""
        found = await self._scripts.player(board, period, username)
        if found is None:
            return []
        score = found.score
        # One extra player above, to tell whether the first one shown ties with it.
        shards = await self._scripts.shard_around(
            board, period, score, username, before=radius + 1, after=radius
        )
        position = sum(shard.position for shard in shards)
        key = ordering(self._layout.board(board).sign)
        before = sorted((entry for shard in shards for entry in shard.before), key=key)
        after = sorted((entry for shard in shards for entry in shard.after), key=key)
        shown_before = before[max(0, len(before) - radius) :] if radius else []
        window = [*shown_before, (username, score), *after[:radius]]
        first_position = position - len(shown_before)
        first_rank = first_position + 1
        if len(before) > len(shown_before) and before[-len(shown_before) - 1][1] == window[0][1]:
            first_score = window[0][1]
            first_rank = 1 + (await self.higher_counts(board, period, [first_score]))[first_score]
        return rank_by_position(window, 0, len(window), first_rank=first_rank, start=first_position)

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

    async def with_board_ranks(self, outcomes: list[IncrementOutcome]) -> list[IncrementOutcome]:
        """Outcomes of sharded boards with board-wide ranks (a script sees one shard).

        The counts of higher scores are read after the whole batch; each increment's
        rank at its turn in the batch is derived from them by replaying the batch's own
        players (the only ones whose scores changed within the call).
        """
        by_period: dict[tuple[str, str], list[int]] = {}
        for index, outcome in enumerate(outcomes):
            increment = outcome.increment
            if self._layout.board(increment.board).shards > 1:
                by_period.setdefault((increment.board, increment.period), []).append(index)
        if not by_period:
            return outcomes
        counts = await asyncio.gather(
            *(
                self.higher_counts(board, period, scores_of(outcomes[i] for i in indexes))
                for (board, period), indexes in by_period.items()
            )
        )
        ranked = list(outcomes)
        for (board, _), indexes, higher in zip(
            by_period.keys(), by_period.values(), counts, strict=True
        ):
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

    async def higher_counts(self, board: str, period: str, scores: list[int]) -> dict[int, int]:
        """For each score, how many players of the period have a strictly better one
        (higher; lower on ASC boards)."""
        shard_keys = self._layout.all_shard_keys(board, period)
        sign = self._layout.board(board).sign

        def commands(pipe: AnyPipeline) -> None:
            for keys in shard_keys:
                pipe.exists(keys.loaded)
                for score in scores:
                    pipe.zcount(keys.ranking, "-inf", f"({sign * score}")

        replies = await self._connection.pipelined(commands)
        totals = dict.fromkeys(scores, 0)
        step = 1 + len(scores)
        for at in range(0, len(replies), step):
            if not replies[at]:
                raise RankingNotLoaded(board, period)
            for score, count in zip(scores, replies[at + 1 : at + step], strict=True):
                totals[score] += int(count)
        return totals


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
