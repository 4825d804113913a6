"""The Lua scripts (lua/*.lua): loaded, registered, called with their KEYS and ARGV, and
their replies decoded. Each script's header documents its KEYS, ARGV and reply; this
module is their one Python counterpart, except the write scripts' batch encoding and
outcome decoding, which live in write_batches.py (pure, no Redis).

Every script gets lua/common.lua prepended (score negation, ranks, page reads).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import orjson

from store.board_kinds import SortOrder, TieBreak
from store.errors import EventIdReused, RankingNotLoaded
from store.models import IncrementOutcome, PageKey, RankedPlayer, RankingPage, ScoreIncrement
from store.redis.connection import Connection, text, unavailable_on_failure
from store.redis.keys import KeyLayout, PeriodKeys, fingerprint, instants_key
from store.redis.ranks import merge_pages
from store.redis.write_batches import (
    increment_call,
    increment_outcomes,
    write_call,
    write_outcomes,
)

_LUA = resources.files(__package__ or "store.redis").joinpath("lua")


def source(name: str) -> str:
    """The text of lua/`name`.lua as registered: common.lua first."""
    return _LUA.joinpath("common.lua").read_text("utf-8") + _LUA.joinpath(f"{name}.lua").read_text(
        "utf-8"
    )


def source_plain(name: str) -> str:
    """The text of lua/`name`.lua alone (a script that needs none of common.lua)."""
    return _LUA.joinpath(f"{name}.lua").read_text("utf-8")


@dataclass(frozen=True, slots=True)
class ShardAround:
    """One shard's answer to shard_around.lua: its players before and after a place."""

    position: int
    """How many of the shard's players come before the place."""
    before: list[tuple[str, int]]
    after: list[tuple[str, int]]
    players: int
    """How many players the shard holds."""


class Scripts:
    """The scripts registered on one connection, as typed calls."""

    def __init__(self, connection: Connection, layout: KeyLayout) -> None:
        self._connection = connection
        self._layout = layout
        self._increment = connection.register("increment", source("increment"))
        self._write = connection.register("write", source("write"))
        self._top = connection.register("top", source("top"))
        self._player = connection.register("player", source("player"))
        self._neighborhood = connection.register("neighborhood", source("neighborhood"))
        self._player_count = connection.register("player_count", source("player_count"))
        self._load = connection.register("load", source("load"))
        self._release = connection.register("release", source("release"))
        self._shard_around = connection.register("shard_around", source("shard_around"))
        self._claims = connection.register("claims", source("claims"))
        self._players = connection.register("players", source("players"))
        self._page = connection.register("page", source("page"))
        self._load_claims = connection.register("load_claims", source("load_claims"))

    async def increment(
        self,
        increments: Sequence[ScoreIncrement],
        *,
        publish: bool = True,
        dry_run: bool = False,
        ranks: bool = True,
    ) -> list[IncrementOutcome]:
        """One run of increment.lua: its outcomes (none for a dry run), or its refusal raised.

        Without `publish` the script publishes nothing (the caller does: sharded ranks
        are only known after the call); with it, only a watched period publishes
        (watchers.py), in both scripts. Without `ranks`, increment.lua leaves the ranks of
        a period that publishes nothing at 0 (write.lua always computes them).
        """
        # One idempotency-window bucket for the whole call (keys.py), named in the outcomes.
        bucket = self._layout.event_bucket()
        call = increment_call(
            self._layout, increments, publish=publish, dry_run=dry_run, bucket=bucket, ranks=ranks
        )
        if call is None:  # a board of another rule, order, tie-break or with caps
            keys, args, groups = write_call(
                self._layout, increments, publish=publish, dry_run=dry_run, bucket=bucket
            )
            reply = await self._connection.call(self._write, keys, args)
            return write_outcomes(self._layout, increments, groups, reply, bucket)
        keys, args, groups = call
        reply = await self._connection.call(self._increment, keys, args)
        return increment_outcomes(increments, groups, reply, bucket)

    def _order_args(self, board_id: str) -> list[str | int]:
        """The trailing ARGV of a read script on a board other than DESC/SHARED (common.lua)."""
        board = self._layout.board(board_id)
        if board.sort_order is SortOrder.DESC and board.tie_break is TieBreak.SHARED:
            return []
        return [board.sign, "1" if board.tie_break is TieBreak.EARLIEST else "0"]

    def _board_args(self, board_id: str) -> list[str | int]:
        """Sign and EARLIEST flag for the scripts that always take them (players, page)."""
        board = self._layout.board(board_id)
        return [board.sign, "1" if board.tie_break is TieBreak.EARLIEST else "0"]

    async def top(self, board: str, period: str, limit: int, offset: int) -> list[RankedPlayer]:
        """top.lua on an unsharded board: players at positions offset .. offset+limit-1."""
        keys = self._layout.keys(board, period)
        reply = await self._connection.call(
            self._top, [keys.ranking, keys.loaded], [limit, offset, *self._order_args(board)]
        )
        return _ranked_players(board, period, reply)

    async def player(self, board: str, period: str, username: str) -> RankedPlayer | None:
        """player.lua on the player's shard: its score and its rank within that shard."""
        keys = self._layout.player_keys(board, period, username)
        reply = await self._connection.call(
            self._player,
            [keys.ranking, keys.loaded, instants_key(keys)],
            [username, *self._order_args(board)],
        )
        _check_loaded(board, period, reply)
        if len(reply) == 1:
            return None
        return RankedPlayer(
            username=username, score=int(reply[1]), rank=int(reply[2]), player_count=int(reply[3])
        )

    async def neighborhood(
        self, board: str, period: str, username: str, radius: int, *, fill: bool = False
    ) -> list[RankedPlayer]:
        """neighborhood.lua on an unsharded board."""
        keys = self._layout.keys(board, period)
        reply = await self._connection.call(
            self._neighborhood,
            [keys.ranking, keys.loaded, instants_key(keys)],
            [username, radius, "1" if fill else "0", *self._order_args(board)],
        )
        return _ranked_players(board, period, reply)

    async def player_count(self, board: str, period: str) -> int:
        """player_count.lua on an unsharded board."""
        keys = self._layout.keys(board, period)
        reply = await self._connection.call(self._player_count, [keys.ranking, keys.loaded], [])
        _check_loaded(board, period, reply)
        return int(reply[1])

    async def shard_around(
        self, board: str, period: str, score: int, username: str, before: int, after: int
    ) -> list[ShardAround]:
        """shard_around.lua on every shard at once: each one's players around the place
        (score, username) in the leaderboard order."""
        replies = await self._connection.fan_out(
            self._shard_around,
            [
                (
                    [shard.ranking, shard.loaded],
                    [score, username, before, after, *self._order_args(board)],
                )
                for shard in self._layout.all_shard_keys(board, period)
            ],
        )
        shards = []
        for reply in replies:
            _check_loaded(board, period, reply)
            count_before = int(reply[2])
            entries = [(text(reply[at]), int(reply[at + 1])) for at in range(4, len(reply), 2)]
            shards.append(
                ShardAround(
                    position=int(reply[1]),
                    before=entries[:count_before],
                    after=entries[count_before:],
                    players=int(reply[3]),
                )
            )
        return shards

    async def players(
        self, board: str, period: str, usernames: Sequence[str]
    ) -> list[RankedPlayer]:
        """players.lua on an unsharded board: the named players that have a score (in the
        order given), each with the period's player count."""
        keys = self._layout.keys(board, period)
        reply = await self._connection.call(
            self._players,
            [keys.ranking, keys.loaded, instants_key(keys)],
            [*self._board_args(board), *usernames],
        )
        return _ranked_players(board, period, reply)

    async def page(self, board: str, period: str, first: int, after: PageKey | None) -> RankingPage:
        """page.lua on every shard at once (one round trip): each one's players after the
        place `after` (from the top without one), merged (ranks.py `merge_pages`)."""
        args: list[str | int | bytes] = [first, *self._board_args(board)]
        if after is not None:
            args += [after[0], after[1]]
        replies = await self._connection.fan_out(
            self._page,
            [
                ([shard.ranking, shard.loaded], args)
                for shard in self._layout.all_shard_keys(board, period)
            ],
        )
        shards = []
        for reply in replies:
            _check_loaded(board, period, reply)
            entries = [
                (
                    (int(float(reply[at + 1])), text(reply[at])),
                    int(reply[at + 2]),
                    text(reply[at + 3]),
                )
                for at in range(4, len(reply), 4)
            ]
            shards.append((int(reply[1]), int(reply[2]), int(reply[3]), entries))
        unique = self._layout.board(board).tie_break is TieBreak.EARLIEST
        return merge_pages(shards, first, after, unique_ranks=unique)

    async def load(
        self,
        keys: PeriodKeys,
        temp_ranking: str,
        temp_events: str,
        expire_at_ms: int,
        temp_instants: str | None = None,
        temp_writers: str | None = None,
    ) -> None:
        """load.lua: swap the temporary keys in and mark the period loaded (with the
        writers hash, and the instants hash on boards that keep one); the restored event
        ids go to the window's current bucket."""
        extra = [] if temp_instants is None else [instants_key(keys), temp_instants]
        window = self._layout.event_window(keys.events)
        with unavailable_on_failure():
            await self._load(
                keys=[
                    keys.ranking,
                    window.current,
                    keys.loaded,
                    temp_ranking,
                    temp_events,
                    window.previous,
                    keys.writers,
                    temp_writers or f"{keys.writers}:load:none",
                    *extra,
                ],
                args=[expire_at_ms, window.current_ttl_ms],
            )

    async def claims(
        self, board: str, period: str, increments: Sequence[ScoreIncrement], *, check_only: bool
    ) -> None:
        """claims.lua: bind the increments' client event ids in the board period's record,
        or raise its refusal (`RankingNotLoaded`, `EventIdReused`) having written nothing."""
        items = [
            [increment.event_id, fingerprint(increment.username, increment.delta)]
            for increment in increments
        ]
        record = self._layout.keys(board, period).claims
        window = self._layout.event_window(record)
        reply = await self._connection.call(
            self._claims,
            [record, window.current, window.previous],
            [
                "1" if check_only else "0",
                orjson.dumps(items),
                self._layout.expire_at_ms(board, period),
                window.current_ttl_ms,
            ],
        )
        status = int(reply[0])
        if status == 1:
            raise RankingNotLoaded(board, period)
        if status == 3:
            raise EventIdReused(increments[int(reply[1]) - 1].event_id)

    async def load_claims(
        self, keys: PeriodKeys, temp_claims: str, temp_bucket: str, expire_at_ms: int
    ) -> None:
        """load_claims.lua: swap a sharded period's freshly written event-id record in,
        its restored ids (`temp_bucket`) as the window's current bucket."""
        window = self._layout.event_window(keys.claims)
        with unavailable_on_failure():
            await self._load_claims(
                keys=[keys.claims, temp_claims, window.current, temp_bucket, window.previous],
                args=[expire_at_ms, window.current_ttl_ms],
            )

    async def release(self, board: str, period: str, token: str) -> None:
        """release.lua: delete the rebuild claim only while it holds `token`."""
        await self._connection.call(
            self._release, [self._layout.keys(board, period).rebuild], [token]
        )


def _check_loaded(board: str, period: str, reply: list[Any]) -> None:
    if int(reply[0]) == 0:
        raise RankingNotLoaded(board, period)


def _ranked_players(board: str, period: str, reply: list[Any]) -> list[RankedPlayer]:
    _check_loaded(board, period, reply)
    count = int(reply[1])
    return [
        RankedPlayer(
            username=text(reply[at]),
            score=int(reply[at + 1]),
            rank=int(reply[at + 2]),
            player_count=count,
        )
        for at in range(2, len(reply), 3)
    ]
