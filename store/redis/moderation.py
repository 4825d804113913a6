"""Moderation on Redis: taking a player out of a period's ranking, giving a total back, and
forgetting their client event ids (removePlayer, banPlayer, unbanPlayer, erasePlayer).

Each step on a player is one script call on the player's key set (lua/remove.lua,
lua/restore.lua; a sharded board period's own event-id record, in another slot, gets
lua/forget.lua), on boards of every rule, order and tie-break: the scripts are told the
board's sign and ties, and on boards that keep instants a removal takes one from the
ranking's clock (the removal row's instant, docs/moderation.md). The scripts are
registered here rather than in scripts.py: they are this
concern's own, and nothing else calls them. An unsharded board on one Redis publishes
from inside the script, in order with the increments' messages; a sharded board (whose
board-wide ranks are only known after the call) and a cluster (sharded pub/sub) publish
from here, as the increments of those paths do (changes.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from store.board_kinds import TieBreak
from store.errors import RankingNotLoaded
from store.models import RemovedScore, ScoreChange
from store.redis import changes
from store.redis.connection import Connection, text
from store.redis.keys import KeyLayout, instants_key
from store.redis.scripts import source
from store.redis.sharded import ShardedBoards
from store.tiebreak import encode_instant


class Moderation:
    """Removal, restoration and forgetting of one player's live entries."""

    def __init__(self, connection: Connection, layout: KeyLayout, sharded: ShardedBoards) -> None:
        self._connection = connection
        self._layout = layout
        self._sharded = sharded
        self._remove = connection.register("remove", source("remove"))
        self._restore = connection.register("restore", source("restore"))
        self._forget = connection.register("forget", source("forget"))

    def _kind(self, board: str) -> list[str]:
        """The board's sign and ties, as the scripts take them (common.lua `use_board`)."""
        config = self._layout.board(board)
        return [str(config.sign), "1" if config.tie_break is TieBreak.EARLIEST else "0"]

    def _publishes_from_script(self, board: str) -> bool:
        return not self._connection.cluster and self._layout.board(board).shards == 1

    async def remove(
        self, board: str, period: str, username: str, *, forget: Sequence[str] = ()
    ) -> RemovedScore | None:
        """Take the player out of the period's ranking; the score removed (and, on boards
        that keep instants, the removal's instant), None without one.

        Raises `RankingNotLoaded` (nothing changed) unless the period is loaded.
        """
        return await self._take_out(board, period, username, forget, loaded_only=True)

    async def erase(self, board: str, period: str, username: str, event_ids: Sequence[str]) -> int:
        """Take the player out whether or not the period is loaded, and forget `event_ids`
        where they are bound to the player; how many rankings lost the player (0 or 1)."""
        removed = await self._take_out(board, period, username, event_ids, loaded_only=False)
        config = self._layout.board(board)
        if config.shards > 1 and event_ids:
            window = self._layout.event_window(self._layout.keys(board, period).claims)
            await self._connection.call(
                self._forget,
                [window.current, window.previous],
                [username, orjson.dumps(list(event_ids))],
            )
        return 0 if removed is None else 1

    async def _take_out(
        self,
        board: str,
        period: str,
        username: str,
        forget: Sequence[str],
        *,
        loaded_only: bool,
    ) -> RemovedScore | None:
        config = self._layout.board(board)
        keys = self._layout.player_keys(board, period, username)
        in_script = self._publishes_from_script(board)
        # Only a removal (a history row follows) needs an instant; an erasure writes none.
        timed = loaded_only and config.keeps_instants
        window = self._layout.event_window(keys.events)
        reply = await self._connection.call(
            self._remove,
            [keys.ranking, keys.loaded, window.current, instants_key(keys), window.previous],
            [
                username,
                "1" if loaded_only else "0",
                self._layout.channel(board) if in_script else "",
                board,
                period,
                orjson.dumps(list(forget)),
                *self._kind(board),
                "1" if timed else "0",
                self._layout.expire_at_ms(board, period),
            ],
        )
        status = int(reply[0])
        if status == 0:
            raise RankingNotLoaded(board, period)
        if status == 1:
            return None
        score, rank, instant = int(reply[2]), int(reply[3]), int(reply[4])
        if not in_script:
            if config.shards > 1:
                # Players before it: the same count before and after the removal.
                try:
                    if config.tie_break is TieBreak.EARLIEST:
                        place = (config.sign * score, text(reply[5]))
                        rank = (
                            1 + (await self._sharded.before_counts(board, period, [place]))[place]
                        )
                    else:
                        higher = await self._sharded.higher_counts(board, period, [score])
                        rank = 1 + higher[score]
                except RankingNotLoaded:
                    pass  # another shard lost its data: the rebuild resyncs everyone
            await self._publish(
                ScoreChange(
                    board=board,
                    period=period,
                    username=username,
                    previous_score=score,
                    score=score,
                    previous_rank=rank,
                    rank=rank,
                    removed=True,
                )
            )
        return RemovedScore(score=score, instant=instant if timed else None)

    async def restore(
        self, board: str, period: str, username: str, total: int, instant: int = 0
    ) -> bool:
        """Give the player `total`, reached at `instant` (EARLIEST: its place among equal
        scores), in the period and publish it; False (nothing changed) when the period is
        not loaded: its rebuild will rank the player from the history."""
        keys = self._layout.player_keys(board, period, username)
        in_script = self._publishes_from_script(board)
        reply = await self._connection.call(
            self._restore,
            [keys.ranking, keys.loaded, instants_key(keys)],
            [
                username,
                total,
                self._layout.channel(board) if in_script else "",
                board,
                period,
                self._layout.expire_at_ms(board, period),
                *self._kind(board),
                encode_instant(instant),
            ],
        )
        if int(reply[0]) == 0:
            return False
        had, previous, previous_rank, rank = (int(value) for value in reply[1:5])
        if not in_script:
            config = self._layout.board(board)
            try:
                if config.shards > 1 and config.tie_break is TieBreak.EARLIEST:
                    now = (config.sign * total, text(reply[6]))
                    old = (config.sign * previous, text(reply[5]))
                    places = [now, old] if had else [now]
                    before = await self._sharded.before_counts(board, period, places)
                    rank = 1 + before[now]
                    # Counted after the restore: the player itself, if now before its old place.
                    previous_rank = 1 + before[old] - (now < old) if had else 0
                elif config.shards > 1:
                    scores = sorted({total, previous} if had else {total})
                    higher = await self._sharded.higher_counts(board, period, scores)
                    rank = 1 + higher[total]
                    previous_rank = 1 + higher[previous] if had else 0
            except RankingNotLoaded:
                pass
            await self._publish(
                ScoreChange(
                    board=board,
                    period=period,
                    username=username,
                    previous_score=previous if had else None,
                    score=total,
                    previous_rank=previous_rank if had else None,
                    rank=rank,
                )
            )
        return True

    async def _publish(self, change: ScoreChange) -> None:
        await changes.publish_changes(self._connection, self._layout, change.board, [change])
