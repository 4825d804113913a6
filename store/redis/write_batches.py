"""The write scripts' side of a batch: KEYS and ARGV of lua/increment.lua and lua/write.lua
built from a batch of increments, and their replies decoded into outcomes or refusals.

Pure functions of the key layout (no Redis): `Scripts.increment` (scripts.py) makes the
call. increment.lua serves batches on `Board.plain` boards only; a batch touching any other
board goes to write.lua, whose group ARGV also carries the board's rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from store.board_kinds import TieBreak, UpdateRule
from store.errors import EventIdReused, RankingNotLoaded, ScoreBeyondCap, ScoreOutOfRange
from store.models import IncrementOutcome, ScoreIncrement
from store.redis.keys import KeyLayout, fingerprint, instants_key

ScriptCall = tuple[list[str], list[str | int | bytes], list[tuple[str, str]]]
"""KEYS, ARGV, and the (board, period) of each group in the script's order."""


def increment_call(
    layout: KeyLayout,
    increments: Sequence[ScoreIncrement],
    *,
    publish: bool,
    dry_run: bool,
    bucket: int,
    ranks: bool = True,
) -> ScriptCall | None:
    """KEYS and ARGV of increment.lua, and the board periods in the script's order;
    None when a board is not `plain` (write.lua serves the batch). `bucket`: the
    idempotency window's bucket the call records client event ids in (keys.py). With
    `publish`, each period publishes only while watched (watchers.py); without `ranks`,
    ranks are computed only for what is published (0 in the outcomes otherwise)."""
    groups: dict[tuple[str, str, int], int] = {}
    group_of: list[int] = []
    keys: list[str] = []
    watched: list[str] = []
    args: list[str | int | bytes] = [0, 1 if dry_run else 0]
    for increment in increments:
        shard = layout.board(increment.board).shard_of(increment.username)
        group = (increment.board, increment.period, shard)
        if group not in groups:
            # Once per board period, not per increment: the hot path stays as it was.
            if not layout.board(increment.board).plain:
                return None
            groups[group] = len(groups) + 1
            period_keys = layout.keys(increment.board, increment.period, shard)
            window = layout.event_window(period_keys.events, bucket)
            keys += [
                period_keys.ranking,
                window.current,
                window.previous,
                period_keys.loaded,
                period_keys.writers,
            ]
            if publish:  # a single Redis only: the marker is outside the period's slot
                watched.append(layout.watched(increment.board))
            args += [
                layout.channel(increment.board) if publish else "",
                increment.board,
                increment.period,
                layout.expire_at_ms(increment.board, increment.period),
                window.current_ttl_ms,
            ]
        group_of.append(groups[group])
    args[0] = len(groups)
    keys += watched
    if any(increment.writer_id is not None for increment in increments):
        args.append(orjson.dumps(_items(increments, group_of)))
        args.append(1 if ranks else 0)
        return keys, args, [(board, period) for board, period, _ in groups]
    # One JSON argument for all the increments, not five per increment: redis-py packs
    # every argument in Python (it was a fifth of the service's CPU under batched
    # ingest), orjson and the script's cjson handle one array in C.
    args.append(
        orjson.dumps(
            [
                [
                    group_number,
                    increment.username,
                    increment.delta,
                    1,
                    increment.event_id,
                    fingerprint(increment.username, increment.delta),
                ]
                if increment.client_event_id
                else [group_number, increment.username, increment.delta, 0, increment.event_id]
                for increment, group_number in zip(increments, group_of, strict=True)
            ]
        )
    )
    args.append(1 if ranks else 0)
    return keys, args, [(board, period) for board, period, _ in groups]


def write_call(
    layout: KeyLayout,
    increments: Sequence[ScoreIncrement],
    *,
    publish: bool,
    dry_run: bool,
    bucket: int,
) -> ScriptCall:
    """KEYS and ARGV of write.lua, and the board periods in the script's order (with
    `publish`, each period publishes only while watched: watchers.py)."""
    groups: dict[tuple[str, str, int], int] = {}
    periods: list[tuple[str, str]] = []
    group_of: list[int] = []
    keys: list[str] = []
    watched: list[str] = []
    args: list[str | int | bytes] = [0, 1 if dry_run else 0]
    for increment in increments:
        board = layout.board(increment.board)
        shard = board.shard_of(increment.username)
        group = (increment.board, increment.period, shard)
        if group not in groups:
            groups[group] = len(groups) + 1
            periods.append((increment.board, increment.period))
            period_keys = layout.keys(increment.board, increment.period, shard)
            window = layout.event_window(period_keys.events, bucket)
            keys += [
                period_keys.ranking,
                window.current,
                window.previous,
                period_keys.loaded,
                instants_key(period_keys),
                period_keys.writers,
            ]
            if publish:  # a single Redis only: the marker is outside the period's slot
                watched.append(layout.watched(increment.board))
            args += [
                layout.channel(increment.board) if publish else "",
                increment.board,
                increment.period,
                layout.expire_at_ms(increment.board, increment.period),
                window.current_ttl_ms,
                board.update_rule.value,
                board.sign,
                "1" if board.tie_break is TieBreak.EARLIEST else "0",
                "1" if board.keeps_instants else "0",
                "" if board.min_score is None else board.min_score,
                "" if board.max_score is None else board.max_score,
            ]
        group_of.append(groups[group])
    args[0] = len(groups)
    keys += watched
    args.append(orjson.dumps(_items(increments, group_of)))
    return keys, args, periods


def _items(increments: Sequence[ScoreIncrement], group_of: list[int]) -> list[list[Any]]:
    """The JSON items of the write scripts (common.lua `decode_writes`), a writer's call's
    with its writer id, sequence and call number."""
    items: list[list[Any]] = []
    for increment, group_number in zip(increments, group_of, strict=True):
        item: list[Any] = [
            group_number,
            increment.username,
            increment.delta,
            1 if increment.client_event_id else 0,
            increment.event_id,
            fingerprint(increment.username, increment.delta) if increment.client_event_id else "",
        ]
        if increment.writer_id is not None:
            item += [increment.writer_id, increment.sequence, increment.call]
        items.append(item)
    return items


def write_outcomes(
    layout: KeyLayout,
    increments: Sequence[ScoreIncrement],
    periods: list[tuple[str, str]],
    reply: list[Any],
    bucket: int,
) -> list[IncrementOutcome]:
    """Outcomes from write.lua's reply, or its refusal raised; an applied client event
    id's `id_life` is the call's `bucket`."""
    status = int(reply[0])
    if status == 1:
        raise RankingNotLoaded(*periods[int(reply[1]) - 1])
    if status in (2, 3, 4, 5):
        failed = increments[int(reply[1]) - 1]
        if status == 2:
            raise ScoreOutOfRange(failed.username, failed.board)
        if status == 3:
            raise EventIdReused(failed.event_id)
        board = layout.board(failed.board)
        bound = board.min_score if status == 4 else board.max_score
        raise ScoreBeyondCap(
            failed.username,
            failed.board,
            int(reply[2]),
            below=status == 4,
            bound=0 if bound is None else bound,
            total=board.update_rule is UpdateRule.INCREMENT,
        )
    if len(reply) == 1:  # a dry run
        return []
    outcomes = []
    for index, increment in enumerate(increments):
        applied, score, rank, had_score, previous_score, previous_rank, instant, reached = reply[
            1 + 8 * index : 9 + 8 * index
        ]
        outcomes.append(
            IncrementOutcome(
                increment=increment,
                score=int(score),
                rank=int(rank),
                applied=bool(applied),
                previous_score=int(previous_score) if had_score else None,
                previous_rank=int(previous_rank) if had_score else None,
                instant=int(instant) or None,
                reached_before=int(reached) or None,
                id_life=bucket if increment.client_event_id and applied else 0,
            )
        )
    return outcomes


def increment_outcomes(
    increments: Sequence[ScoreIncrement],
    groups: list[tuple[str, str]],
    reply: list[Any],
    bucket: int,
) -> list[IncrementOutcome]:
    """Outcomes from increment.lua's reply, or its refusal raised (`id_life` as in
    `write_outcomes`)."""
    status = int(reply[0])
    if status == 1:
        board, period = groups[int(reply[1]) - 1]
        raise RankingNotLoaded(board, period)
    if status == 2:
        failed = increments[int(reply[1]) - 1]
        raise ScoreOutOfRange(failed.username, failed.board)
    if status == 3:
        raise EventIdReused(increments[int(reply[1]) - 1].event_id)
    if len(reply) == 1:  # a dry run
        return []
    # Six integer replies per increment (Lua numbers reach redis-py as ints), read in step
    # from one iterator: half the cost of slicing and converting each (500 per call).
    values = iter(reply)
    next(values)
    return [
        IncrementOutcome(
            increment=increment,
            score=score,
            rank=rank,
            applied=bool(applied),
            previous_score=previous_score if had_score else None,
            previous_rank=previous_rank if had_score else None,
            id_life=bucket if increment.client_event_id and applied else 0,
        )
        for increment, applied, score, rank, had_score, previous_score, previous_rank in zip(
            increments, values, values, values, values, values, values, strict=False
        )
    ]
