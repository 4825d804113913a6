"""Sharded EARLIEST boards: reads and board-wide ranks when equal scores rank by who got
there first and every player lives in one of several sorted sets.

A place in the order is an order key (stored score, member: the instant's 16 hex digits,
then the username), the same in every shard, so the shards merge by it exactly and a
player's rank is 1 + the players ordered before its key, counted in every shard
(before.lua: the players with a better stored score, plus those tied whose member sorts
first, found by a binary search over the tie group). Two players of different shards
that reached a score in the same microsecond (each shard keeps its own clock) then rank
by username: still a total order, still unique ranks (docs/boards.md, "Sharded boards").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from store.errors import RankingNotLoaded
from store.models import IncrementOutcome, RankedPlayer
from store.redis.connection import AnyPipeline, Connection, text
from store.redis.keys import KeyLayout, instants_key
from store.redis.ranks import (
    NO_SCORE_KEY,
    OrderKey,
    replay_unique_ranks,
    unique_keys,
    window_sides,
)
from store.redis.scripts import Scripts, source
from store.tiebreak import INSTANT_DIGITS


class ShardedEarliest:
    """The reads of sharded EARLIEST boards, and the board-wide ranks of their writes."""

    def __init__(self, connection: Connection, layout: KeyLayout, scripts: Scripts) -> None:
        self._connection = connection
        self._layout = layout
        self._scripts = scripts
        self._before = connection.register("before", source("before"))
        self._members = connection.register("members", source("members"))

    async def top(self, board: str, period: str, limit: int, offset: int) -> list[RankedPlayer]:
        """Each shard's first offset+limit members, merged by order key: one round.

        Every player above one of the page is in its own shard's first offset+limit, so
        positions in the merge are exact, and on these boards a rank is the position + 1.
        """
        shard_keys = self._layout.all_shard_keys(board, period)
        stop = offset + limit - 1

        def commands(pipe: AnyPipeline) -> None:
            for keys in shard_keys:
                pipe.exists(keys.loaded)
                pipe.zcard(keys.ranking)
                if limit > 0:
                    pipe.zrange(keys.ranking, 0, stop, withscores=True)

        replies = await self._connection.pipelined(commands)
        step = 3 if limit > 0 else 2
        if not all(replies[0::step]):
            raise RankingNotLoaded(board, period)
        count = sum(int(players) for players in replies[1::step])
        if limit == 0:
            return []
        merged = sorted(
            (int(stored), text(member))
            for entries in replies[2::step]
            for member, stored in entries
        )
        sign = self._layout.board(board).sign
        return [
            _ranked((stored, member), sign, offset + index + 1, count)
            for index, (stored, member) in enumerate(merged[offset : offset + limit])
        ]

    async def player(self, board: str, period: str, username: str) -> RankedPlayer | None:
        """The player's order key from its shard, then the players before it in every shard."""
        found = await self._places(board, period, [username])
        if not found:
            return None
        before, count = await self.counts(board, period, found)
        sign = self._layout.board(board).sign
        return _ranked(found[0], sign, 1 + before[found[0]], count)

    async def players(
        self, board: str, period: str, usernames: Sequence[str]
    ) -> list[RankedPlayer]:
        """The named players' order keys from their shards (one call per shard touched),
        then the players before each key in every shard: two rounds."""
        found = await self._places(board, period, usernames)
        if not found:
            await self.counts(board, period, [])  # still refuses an unloaded period
            return []
        before, count = await self.counts(board, period, found)
        sign = self._layout.board(board).sign
        players = [_ranked(key, sign, 1 + before[key], count) for key in found]
        players.sort(key=lambda player: player.rank)
        return players

    async def neighborhood(
        self, board: str, period: str, username: str, radius: int, *, fill: bool = False
    ) -> list[RankedPlayer]:
        """The player's order key, then each shard's members around it (shard_around.lua
        with the member as the place), merged: two rounds, ranks by position."""
        found = await self._places(board, period, [username])
        if not found:
            return []
        place = found[0]
        sign = self._layout.board(board).sign
        reach = 2 * radius if fill else radius
        shards = await self._scripts.shard_around(
            board, period, sign * place[0], place[1], before=reach, after=reach
        )
        position = sum(shard.position for shard in shards)
        count = sum(shard.players for shard in shards)
        before = sorted(
            (sign * score, member) for shard in shards for member, score in shard.before
        )
        after = sorted((sign * score, member) for shard in shards for member, score in shard.after)
        above, below = window_sides(radius, position, count - position - 1, fill=fill)
        window = [*(before[len(before) - above :] if above else []), place, *after[:below]]
        first = position - above
        return [_ranked(key, sign, first + index + 1, count) for index, key in enumerate(window)]

    async def with_board_ranks(
        self, board: str, period: str, outcomes: list[IncrementOutcome]
    ) -> list[IncrementOutcome]:
        """One period's outcomes with board-wide ranks: the players before every key the
        batch's players had, counted once the batch was applied (one round), then the
        batch replayed on them (ranks.py `replay_unique_ranks`)."""
        keys = unique_keys(outcomes, self._layout.board(board).sign)
        places = {key for pair in keys for key in pair if key is not None}
        if any(
            not outcome.applied and before is None
            for outcome, (before, _) in zip(outcomes, keys, strict=True)
        ):
            places.add(NO_SCORE_KEY)
        before_after, _ = await self.counts(board, period, sorted(places))
        return replay_unique_ranks(outcomes, keys, before_after)

    async def counts(
        self, board: str, period: str, places: Sequence[OrderKey]
    ) -> tuple[dict[OrderKey, int], int]:
        """For each order key, how many players of the period come before it; and how many
        players the period has: before.lua on every shard at once (one round)."""
        args: list[str | int | bytes] = []
        for stored, member in places:
            args += [stored, member]
        replies = await self._connection.fan_out(
            self._before,
            [
                ([keys.ranking, keys.loaded], args)
                for keys in self._layout.all_shard_keys(board, period)
            ],
        )
        totals = dict.fromkeys(places, 0)
        players = 0
        for reply in replies:
            if not int(reply[0]):
                raise RankingNotLoaded(board, period)
            players += int(reply[1])
            for place, count in zip(places, reply[2:], strict=True):
                totals[place] += int(count)
        return totals, players

    async def _places(self, board: str, period: str, usernames: Sequence[str]) -> list[OrderKey]:
        """The order keys of the named players that have a score (members.lua on each
        shard holding one of them, at once), in the order given per shard."""
        config = self._layout.board(board)
        by_shard: dict[int, list[str]] = {}
        for username in usernames:
            by_shard.setdefault(config.shard_of(username), []).append(username)
        calls: list[tuple[list[str], Any]] = []
        for shard, names in by_shard.items():
            keys = self._layout.keys(board, period, shard)
            calls.append(([keys.ranking, keys.loaded, instants_key(keys)], names))
        replies = await self._connection.fan_out(self._members, calls) if calls else []
        found: list[OrderKey] = []
        for reply in replies:
            if not int(reply[0]):
                raise RankingNotLoaded(board, period)
            found += [
                (int(float(reply[at + 1])), text(reply[at])) for at in range(1, len(reply), 2)
            ]
        return found


def _ranked(key: OrderKey, sign: int, rank: int, count: int) -> RankedPlayer:
    stored, member = key
    return RankedPlayer(
        username=member[INSTANT_DIGITS:], score=sign * stored, rank=rank, player_count=count
    )
