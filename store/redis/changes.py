"""Live changes over pub/sub: the change-message codec, publishing, and the subscription.

The message format, defined here and in the write scripts' one encoder (lua/common.lua
`queue_change`, which the tests hold to this one): on `{prefix}:changes:{board}`
(keys.py), one message per board and script call, a JSON array of objects in
application order

    [{"board": str, "period": str, "username": str, "previous_score": int | null,
      "score": int, "previous_rank": int | null, "rank": int}, ...]

(a single object is read as an array of one). A removal (removePlayer, banPlayer,
erasePlayer: lua/remove.lua) adds `"removed": true` to its object, whose score and rank are
the ones the player had; an object without the field is no removal. Numbers are exact
integers within
+-(2^53 - 1). increment.lua publishes what it applies on an unsharded board of a single
Redis; `publish` sends the changes of the other paths (sharded ranks are only known
after the call, and a cluster call covers one slot).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Any

import orjson

from store.errors import StoreUnavailable
from store.models import IncrementOutcome, ScoreChange
from store.redis.connection import SUBSCRIPTION_ERRORS, Connection
from store.redis.keys import KeyLayout
from store.redis.watchers import Watchers

logger = logging.getLogger(__name__)

RESUBSCRIBE_MIN_SECONDS = 0.1
RESUBSCRIBE_MAX_SECONDS = 5.0
# What a subscription (or the hold before it: `Watchers.watch`) retries after.
_RESUBSCRIBE_ERRORS: tuple[type[Exception], ...] = (*SUBSCRIPTION_ERRORS, StoreUnavailable)


def change_of(outcome: IncrementOutcome) -> ScoreChange:
    """The change an applied increment made."""
    increment = outcome.increment
    return ScoreChange(
        board=increment.board,
        period=increment.period,
        username=increment.username,
        previous_score=outcome.previous_score,
        score=outcome.score,
        previous_rank=outcome.previous_rank,
        rank=outcome.rank,
    )


def encode(changes: Sequence[ScoreChange]) -> bytes:
    """One message: the changes as a JSON array (see the module doc)."""
    return orjson.dumps([_fields(change) for change in changes])


def _fields(change: ScoreChange) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "board": change.board,
        "period": change.period,
        "username": change.username,
        "previous_score": change.previous_score,
        "score": change.score,
        "previous_rank": change.previous_rank,
        "rank": change.rank,
    }
    if change.removed:
        fields["removed"] = True
    return fields


def decode(data: bytes | str) -> list[ScoreChange]:
    """The changes of one message; none (logged) when it is malformed."""
    try:
        decoded = orjson.loads(data)
        items = decoded if isinstance(decoded, list) else [decoded]
        return [
            ScoreChange(
                board=str(fields["board"]),
                period=str(fields["period"]),
                username=str(fields["username"]),
                previous_score=_optional_int(fields["previous_score"]),
                score=int(fields["score"]),
                previous_rank=_optional_int(fields["previous_rank"]),
                rank=int(fields["rank"]),
                removed=fields.get("removed") is True,
            )
            for fields in items
        ]
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        logger.warning("ignoring a malformed change message: %r", data)
        return []


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


async def publish(
    connection: Connection, layout: KeyLayout, outcomes: Iterable[IncrementOutcome]
) -> None:
    """Publish the applied outcomes' changes, one message per board.

    A failed publish is logged, not raised: the increments are applied, and live
    subscribers resynchronise from reads anyway.
    """
    by_board: dict[str, list[ScoreChange]] = {}
    for outcome in outcomes:
        # Only a changed kept score is news (a worse submission to a BEST board is not).
        if outcome.changed:
            by_board.setdefault(outcome.increment.board, []).append(change_of(outcome))
    for board, changes in by_board.items():
        try:
            await connection.publish(layout.channel(board), encode(changes))
        except StoreUnavailable as error:
            logger.warning("could not publish %d changes of %s: %s", len(changes), board, error)


async def publish_changes(
    connection: Connection, layout: KeyLayout, board: str, changes: Sequence[ScoreChange]
) -> None:
    """Publish changes of one board as one message; a failure is logged, not raised (the
    change is made, and live subscribers resynchronise from reads anyway)."""
    try:
        await connection.publish(layout.channel(board), encode(changes))
    except StoreUnavailable as error:
        logger.warning("could not publish %d changes of %s: %s", len(changes), board, error)


async def subscribe(
    connection: Connection,
    channel: str,
    closed: Callable[[], bool],
    *,
    watchers: Watchers | None = None,
    board: str = "",
) -> AsyncIterator[ScoreChange]:
    """The changes published on `channel`, until `closed()` or the iterator is closed;
    holding `board` on `watchers` (when given) from before the subscription until then.

    Survives Redis restarts, failovers and slot moves by resubscribing with backoff
    (changes published meanwhile are lost: consumers resynchronise from reads).
    """
    delay = RESUBSCRIBE_MIN_SECONDS
    held = False
    try:
        while not closed():
            subscription = connection.subscription(channel)
            try:
                if watchers is not None and not held:
                    await watchers.watch(board)
                    held = True
                await subscription.subscribe()
                while True:
                    for change in decode(await subscription.next_data()):
                        yield change
            except _RESUBSCRIBE_ERRORS as error:
                if closed():
                    return
                if subscription.confirmed:
                    delay = RESUBSCRIBE_MIN_SECONDS  # it worked for a while: retry soon
                logger.warning(
                    "subscription to %s lost (%s); resubscribing in %.1f s", channel, error, delay
                )
                await connection.rediscover()
            finally:
                await subscription.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, RESUBSCRIBE_MAX_SECONDS)
    finally:
        if held and watchers is not None:
            watchers.unwatch(board)
