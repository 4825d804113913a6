"""A shortcut for the hot operations: one root field, plain selections, no fragments.

Game servers and frontends send the same few documents thousands of times a second
(`incrementScore`, `incrementScores`, `setScore`, `topPlayers`, `player`, `neighborhood`,
`players`: the seven of `_OPERATIONS`). A ranked player's `displayName` and `metadata` are
served too: the answer's profiles in one fetch, only when selected. Strawberry's execution of
them costs several times what the service call does, so a document of that simple shape
is planned once (parsed and validated against the schema) and then answered by calling
the service directly and writing the JSON with orjson. The answer, errors included, is
the one Strawberry gives; anything else (fragments, directives, several fields, a
variable of an unexpected type...) returns None and takes the normal path.

Planning (parsing, validating, reading argument names, types and defaults from the built
schema, taking only plain values) is schema/plans.py, shared with the subscriptions'
shortcut: the Strawberry fields in schema/operations.py are the one place that states
arguments and defaults. This module holds what is particular to queries and mutations:
which fields (`_OPERATIONS`), how each calls the service, and the JSON encoding.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

import orjson
from graphql import GraphQLSchema, OperationType

from resolvers.errors import ApiError, ErrorCode, unauthenticated
from resolvers.service import IncrementRequest, LeaderboardService
from schema.documents import MAX_DOCUMENT_CHARS
from schema.errors import INTERNAL_MESSAGE
from schema.plans import Arguments, FieldShape, Plan, Planner, declared_shape, plain_arguments
from store.models import IncrementOutcome, RankedPlayer

# Plan is re-exported: the tests and callers name it as the shortcut's plan.
__all__ = ["FastPath", "Plan"]

logger = logging.getLogger(__name__)


Execute = Callable[[LeaderboardService, Arguments, FieldShape, tuple[str, ...]], Awaitable[Any]]
"""Runs a field: the service, the arguments, the declared shape, the selected fields."""


@dataclass(frozen=True, slots=True)
class _Field:
    """A query or mutation field: its declared shape, how to run it."""

    shape: FieldShape
    execute: Execute

    @property
    def kind(self) -> OperationType:
        return self.shape.kind


async def _top(service: LeaderboardService, args: Arguments, *_: Any) -> Any:
    return await service.top(args["board"], args["period"], args["limit"], args["offset"])


async def _player(service: LeaderboardService, args: Arguments, *_: Any) -> Any:
    return await service.player(args["board"], args["period"], args["username"])


async def _neighborhood(service: LeaderboardService, args: Arguments, *_: Any) -> Any:
    return await service.neighborhood(
        args["board"], args["period"], args["username"], args["radius"], args["fill"]
    )


async def _players(service: LeaderboardService, args: Arguments, *_: Any) -> Any:
    return await service.players(args["board"], args["period"], args["usernames"])


async def _increment(
    service: LeaderboardService, args: Arguments, _: FieldShape, selections: tuple[str, ...]
) -> Any:
    request = IncrementRequest(
        username=args["username"],
        delta=args["delta"],
        board=args["board"],
        event_id=args["eventId"],
    )
    # The ranks are most of a write's Redis cost: computed only when selected.
    (outcome,) = await service.increment(
        [request], args["writerId"], args["sequence"], ranks="rank" in selections
    )
    return outcome


async def _increments(
    service: LeaderboardService, args: Arguments, shape: FieldShape, selections: tuple[str, ...]
) -> Any:
    board = shape.arguments["increments"].item_defaults["board"]
    # Plain tuples in IncrementRequest's field order: one per item of a batch of up to 1000.
    requests = [
        (item["username"], item["delta"], item.get("board", board), item.get("eventId"))
        for item in args["increments"]
    ]
    return await service.increment(
        requests, args["writerId"], args["sequence"], ranks="rank" in selections
    )


async def _set_score(service: LeaderboardService, args: Arguments, *_: Any) -> Any:
    return await service.set_score(
        args["username"],
        args["score"],
        args["board"],
        args["eventId"],
        args["writerId"],
        args["sequence"],
    )


_PROFILE_FIELDS = frozenset({"displayName", "metadata"})
_PLAYER_FIELDS = frozenset({"username", "score", "rank", "topPercent"}) | _PROFILE_FIELDS
_UPDATE_FIELDS = frozenset({"username", "board", "period", "score", "rank", "applied"})
_SUBMISSION_FIELDS = _UPDATE_FIELDS | {"improved"}
# What the shortcut knows of each operation besides what the schema declares: how to run it,
# and which fields of its result the encoder below can write.
_OPERATIONS: dict[str, tuple[OperationType, frozenset[str], Execute]] = {
    "topPlayers": (OperationType.QUERY, _PLAYER_FIELDS, _top),
    "player": (OperationType.QUERY, _PLAYER_FIELDS, _player),
    "neighborhood": (OperationType.QUERY, _PLAYER_FIELDS, _neighborhood),
    "players": (OperationType.QUERY, _PLAYER_FIELDS, _players),
    "incrementScore": (OperationType.MUTATION, _UPDATE_FIELDS, _increment),
    "incrementScores": (OperationType.MUTATION, _UPDATE_FIELDS, _increments),
    "setScore": (OperationType.MUTATION, _SUBMISSION_FIELDS, _set_score),
}


def _fields(schema: GraphQLSchema) -> dict[str, _Field]:
    return {
        name: _Field(declared_shape(schema, kind, name, encodable), execute)
        for name, (kind, encodable, execute) in _OPERATIONS.items()
    }


class FastPath:
    """Plans simple documents once and answers them without Strawberry's execution."""

    def __init__(
        self,
        schema: GraphQLSchema,
        service: LeaderboardService,
        max_tokens: int,
        max_chars: int = MAX_DOCUMENT_CHARS,
    ) -> None:
        self._service = service
        self._planner = Planner(schema, _fields(schema), max_tokens, max_chars)

    def plan(self, query: str, operation_name: str | None) -> Plan[_Field] | None:
        """The plan of a document, None when it must take the normal path (cached both ways)."""
        return self._planner.plan(query, operation_name)

    @property
    def held_bytes(self) -> int:
        """What the cached plans keep alive."""
        return self._planner.held_bytes

    async def answer(
        self, plan: Plan[_Field], variables: Mapping[str, Any], authorized: bool
    ) -> tuple[bytes, str] | None:
        """The JSON response and its outcome code ('OK' or an error code), or None when the
        variables are not plainly of the declared types (the normal path reports that)."""
        arguments = plain_arguments(plan, variables)
        if arguments is None:
            return None
        try:
            if plan.field.kind is OperationType.MUTATION and not authorized:
                raise unauthenticated()
            result = await plan.field.execute(
                self._service, arguments, plan.field.shape, plan.selections
            )
            if not _PROFILE_FIELDS.isdisjoint(plan.selections):
                result = await _with_profiles(self._service, result)
        except ApiError as error:
            return self._error(plan, error.message, error.code.value), error.code.value
        except Exception:
            logger.exception("unexpected error in %s", plan.name)
            return self._error(plan, INTERNAL_MESSAGE, ErrorCode.UNAVAILABLE.value), "UNAVAILABLE"
        data = {plan.response_key: _encode(result, plan.selections)}
        return orjson.dumps({"data": data}), "OK"

    def _error(self, plan: Plan[_Field], message: str, code: str) -> bytes:
        error = {
            "message": message,
            "locations": [plan.location],
            "path": [plan.response_key],
            "extensions": {"code": code},
        }
        data = {plan.response_key: None} if plan.field.shape.nullable else None
        return orjson.dumps({"data": data, "errors": [error]})


@dataclass(frozen=True, slots=True)
class _Profiled:
    """A ranked player with its profile, as the encoder reads it (metadata: its JSON text,
    written into the answer as it is)."""

    username: str
    score: int
    rank: int
    top_percent: float
    display_name: str | None
    metadata: orjson.Fragment | None


async def _with_profiles(service: LeaderboardService, result: Any) -> Any:
    """The ranked player(s) of a result with their profiles: one fetch for the answer."""
    if result is None or result == []:
        return result
    players: list[RankedPlayer] = result if isinstance(result, list) else [result]
    profiles = await service.profiles([player.username for player in players])
    dressed = []
    for player in players:
        profile = profiles[player.username]
        metadata = profile.metadata
        dressed.append(
            _Profiled(
                player.username,
                player.score,
                player.rank,
                player.top_percent,
                profile.display_name,
                None if metadata is None else orjson.Fragment(metadata),
            )
        )
    return dressed if isinstance(result, list) else dressed[0]


def _encode(result: Any, selections: tuple[str, ...]) -> Any:
    if result is None:
        return None
    if isinstance(result, list):
        # A list the service returns holds one type (outcomes or players): one encoder.
        if not result:
            return []
        if len(selections) == 1:  # e.g. a batch's `{ applied }`: no call per item
            (name,) = selections
            get = attrgetter(_PATHS[type(result[0])][name])
            return [{name: value} for value in map(get, result)]
        encode = _encoder(type(result[0]), selections)
        return [encode(item) for item in result]
    return _encoder(type(result), selections)(result)


_PATHS: dict[type, dict[str, str]] = {
    RankedPlayer: {
        "username": "username",
        "score": "score",
        "rank": "rank",
        "topPercent": "top_percent",
    },
    _Profiled: {
        "username": "username",
        "score": "score",
        "rank": "rank",
        "topPercent": "top_percent",
        "displayName": "display_name",
        "metadata": "metadata",
    },
    IncrementOutcome: {
        "username": "increment.username",
        "board": "increment.board",
        "period": "increment.period",
        "score": "score",
        "rank": "rank",
        "applied": "applied",
        # setScore's ScoreSubmission (incrementScore's ScoreUpdate has no such field).
        "improved": "changed",
    },
}


def _encoder(kind: type, selections: tuple[str, ...]) -> Callable[[Any], dict[str, Any]]:
    """The JSON object of a `kind` result with the selected fields, in their order."""
    # Built once per answer; one C-level attrgetter instead of a dict of every field per
    # item, as a batch's answer encodes up to 1000 outcomes.
    get = attrgetter(*(_PATHS[kind][name] for name in selections))
    if len(selections) == 1:
        (name,) = selections
        return lambda item: {name: get(item)}
    return lambda item: dict(zip(selections, get(item), strict=True))
