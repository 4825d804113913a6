"""A shortcut for the live subscriptions, in the spirit of the queries' one (schema/fast_path.py).

An overlay's `topPlayersChanged` or a frontend's `rankChanged` of the plain shape (one root
field, plain scalar selections, no fragments or directives) skips Strawberry's execution of
every update: the payload (`{"data": ...}`) is written by orjson straight from what
`LiveRankings` yields, byte-equal to Strawberry's. Every watcher of one board's top list
receives the same list object, so its payload is encoded once per list and selection and
each further subscriber costs one WebSocket send.

Everything else returns None and Strawberry runs it as before: other documents, variables
not plainly of their declared types, and arguments the service refuses (the error then
comes from Strawberry, as it always did). An exception raised while watching ends the
stream with the payload Strawberry makes of it.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from graphql import GraphQLError, GraphQLSchema, OperationType

from resolvers.live import LiveRankings, RankUpdate
from resolvers.service import LeaderboardService
from schema.context import ApiContext
from schema.documents import ENTRY_BYTES, MAX_DOCUMENT_CHARS, ByteBoundedCache
from schema.errors import assign_codes
from schema.plans import (
    Arguments,
    FieldShape,
    Plan,
    Planner,
    declared_shape,
    plain_arguments,
)
from store.models import RankedPlayer

Finished = Callable[[str, str], None]
"""Told (root field, outcome code) when a stream ends by itself; Strawberry's operation
metrics count a subscription then, and not when the client stops it."""

SHARED_PAYLOAD_BYTES = 4 * 1024 * 1024
"""Payloads kept for reuse, one per (field, selection, arguments) whose watchers share values:
a top list of 100 players is about 6 KB."""


@dataclass(frozen=True, slots=True)
class _LiveField:
    """A subscription field: its declared shape, how to check its arguments, watch it, and
    encode one value."""

    shape: FieldShape
    check: Callable[[LeaderboardService, Arguments], None]
    watch: Callable[[LiveRankings, Arguments], AsyncIterator[Any]]
    encode: Callable[[Any, tuple[str, ...]], Any]
    shared: bool
    """Whether watchers with the same arguments are handed the same value objects."""


def _check_top(service: LeaderboardService, arguments: Arguments) -> None:
    service.subscribable_top(arguments["board"], arguments["limit"])


def _watch_top(live: LiveRankings, arguments: Arguments) -> AsyncIterator[list[RankedPlayer]]:
    return live.watch_top(arguments["board"], arguments["limit"])


def _encode_top(players: list[RankedPlayer], selections: tuple[str, ...]) -> Any:
    # Scores are within ±(2^53 - 1), where the Long scalar serialises them unchanged: the
    # store refuses any increment that would leave that range.
    rows = []
    for player in players:
        values = {
            "username": player.username,
            "score": player.score,
            "rank": player.rank,
            "topPercent": player.top_percent,
        }
        rows.append({name: values[name] for name in selections})
    return rows


def _check_player(service: LeaderboardService, arguments: Arguments) -> None:
    service.subscribable_player(arguments["board"], arguments["username"])


def _watch_player(live: LiveRankings, arguments: Arguments) -> AsyncIterator[RankUpdate]:
    return live.watch_player(arguments["board"], arguments["username"])


def _encode_update(update: RankUpdate, selections: tuple[str, ...]) -> Any:
    values = {
        "username": update.username,
        "board": update.board,
        "period": update.period,
        "score": update.score,
        "rank": update.rank,
        "previousRank": update.previous_rank,
    }
    return {name: values[name] for name in selections}


_TOP_FIELDS = frozenset({"username", "score", "rank", "topPercent"})
_UPDATE_FIELDS = frozenset({"username", "board", "period", "score", "rank", "previousRank"})


def _fields(schema: GraphQLSchema) -> dict[str, _LiveField]:
    """The subscriptions the shortcut serves; arguments, defaults and fields from `schema`."""
    return {
        "topPlayersChanged": _LiveField(
            declared_shape(schema, OperationType.SUBSCRIPTION, "topPlayersChanged", _TOP_FIELDS),
            check=_check_top,
            watch=_watch_top,
            encode=_encode_top,
            shared=True,
        ),
        "rankChanged": _LiveField(
            declared_shape(schema, OperationType.SUBSCRIPTION, "rankChanged", _UPDATE_FIELDS),
            check=_check_player,
            watch=_watch_player,
            encode=_encode_update,
            shared=False,
        ),
    }


Payloads = AsyncGenerator[orjson.Fragment, None]
"""A subscription's `next` payloads, each already JSON."""


class FastSubscriptions:
    """Plans simple subscription documents once and streams their payloads pre-encoded."""

    def __init__(
        self,
        schema: GraphQLSchema,
        max_tokens: int,
        finished: Finished,
        max_chars: int = MAX_DOCUMENT_CHARS,
    ) -> None:
        self._planner = Planner(schema, _fields(schema), max_tokens, max_chars)
        self._finished = finished
        self._shared: ByteBoundedCache[tuple[Any, ...], tuple[object, orjson.Fragment]] = (
            ByteBoundedCache(SHARED_PAYLOAD_BYTES)
        )

    def plan(self, query: str, operation_name: str | None) -> Plan[_LiveField] | None:
        """The plan of a document, None when Strawberry must run it (cached both ways)."""
        return self._planner.plan(query, operation_name)

    @property
    def held_bytes(self) -> int:
        """What the cached plans and shared payloads keep alive."""
        return self._planner.held_bytes + self._shared.held_bytes

    def open(
        self, context: ApiContext, query: object, variables: object, operation_name: object
    ) -> Payloads | None:
        """The payloads of a subscription message's document, or None: let Strawberry run it.

        The arguments are checked here, so a subscription the service refuses never starts.
        """
        if not (
            isinstance(query, str)
            and (variables is None or isinstance(variables, dict))
            and (operation_name is None or isinstance(operation_name, str))
        ):
            return None
        plan = self.plan(query, operation_name)
        if plan is None:
            return None
        arguments = plain_arguments(plan, variables or {})
        if arguments is None:
            return None
        try:
            plan.field.check(context.service, arguments)
        except Exception:
            return None
        return self._stream(plan, arguments, context.live)

    async def _stream(
        self, plan: Plan[_LiveField], arguments: Arguments, live: LiveRankings
    ) -> Payloads:
        field = plan.field
        shared_key = (plan.name, plan.response_key, plan.selections, *arguments.values())
        code = "OK"
        try:
            async for value in field.watch(live, arguments):
                if field.shared:
                    yield self._shared_payload(plan, shared_key, value)
                else:
                    yield self._payload(plan, value)
        except Exception as error:
            # What Strawberry sends when a subscription's iterator raises: no data, the
            # error with the code `assign_codes` gives it, and the stream ends.
            graphql_error = GraphQLError(str(error), original_error=error)
            assign_codes([graphql_error])
            code = str((graphql_error.extensions or {}).get("code"))
            body = {"data": None, "errors": [graphql_error.formatted]}
            yield orjson.Fragment(orjson.dumps(body))
        self._finished(plan.name, code)

    def _shared_payload(
        self, plan: Plan[_LiveField], key: tuple[Any, ...], value: object
    ) -> orjson.Fragment:
        # The cache holds the value itself: an identical object is the same version of the
        # list (LiveRankings never mutates one it handed out), and its id cannot be reused.
        cached = self._shared.get(key)
        if cached is not None and cached[0][0] is value:
            return cached[0][1]
        body = self._json(plan, value)
        payload = orjson.Fragment(body)
        # The key's strings (a username...) and the JSON; the value is the feed's own list.
        weight = ENTRY_BYTES + sys.getsizeof(body) + sum(map(sys.getsizeof, key))
        self._shared.put(key, (value, payload), weight)
        return payload

    @classmethod
    def _payload(cls, plan: Plan[_LiveField], value: object) -> orjson.Fragment:
        return orjson.Fragment(cls._json(plan, value))

    @staticmethod
    def _json(plan: Plan[_LiveField], value: object) -> bytes:
        data = {plan.response_key: plan.field.encode(value, plan.selections)}
        # A right-sized copy: orjson's bytes keep the buffer they were written into (4 KiB
        # for a 60-byte payload), and the last payload of every subscription stays referenced
        # while it waits for the next (docs/performance.md, "Memory per WebSocket subscriber").
        return bytes(memoryview(orjson.dumps({"data": data})))
