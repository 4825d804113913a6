"""A shortcut for the hot operations: one root field, plain selections, no fragments.

Game servers and frontends send the same few documents thousands of times a second
(`incrementScore`, `incrementScores`, `topPlayers`, `player`, `neighborhood`: the five of
`_OPERATIONS`). Strawberry's execution of
them costs several times what the service call does, so a document of that simple shape
is planned once (parsed and validated against the schema) and then answered by calling
the service directly and writing the JSON with orjson. The answer, errors included, is
the one Strawberry gives; anything else (fragments, directives, several fields, a
variable of an unexpected type...) returns None and takes the normal path.

Argument names, types and defaults, nullability and the selectable fields are read from the
built schema once, when the shortcut is made (`declared_shape`): the Strawberry fields in
schema/operations.py are the one place that states them.

`Planner` and `plain_arguments` are shared with the subscriptions' shortcut
(schema/fast_subscriptions.py).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from itertools import repeat
from operator import attrgetter
from typing import Any, Generic, Protocol, TypeVar

import orjson
from graphql import (
    BooleanValueNode,
    DocumentNode,
    FieldNode,
    GraphQLArgument,
    GraphQLError,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLObjectType,
    GraphQLSchema,
    IntValueNode,
    ListTypeNode,
    NamedTypeNode,
    NonNullTypeNode,
    NullValueNode,
    OperationDefinitionNode,
    OperationType,
    StringValueNode,
    TypeNode,
    Undefined,
    ValueNode,
    VariableNode,
    get_named_type,
    is_leaf_type,
    is_non_null_type,
    parse,
    validate,
    value_from_ast,
)

from resolvers.errors import ApiError, ErrorCode, unauthenticated
from resolvers.service import IncrementRequest, LeaderboardService
from schema.documents import (
    MAX_DOCUMENT_CHARS,
    PLAN_CACHE_BYTES,
    ByteBoundedCache,
    document_bytes,
    text_bytes,
)
from schema.errors import INTERNAL_MESSAGE
from store.models import IncrementOutcome, RankedPlayer

logger = logging.getLogger(__name__)

_INT32 = range(-(2**31), 2**31)
_INCREMENT_LIST = "[ScoreIncrement!]"

Arguments = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Argument:
    """An argument as the schema declares it: its type, its default (None when it has none),
    and for a list of input objects, the fields an item may have and their defaults."""

    type_name: str
    default: Any
    item_fields: frozenset[str]
    item_defaults: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class FieldShape:
    """A root field a shortcut knows: its operation type, its arguments and the subfields it
    may select (plain scalars), all read from the built schema; whether it is nullable."""

    kind: OperationType
    arguments: Mapping[str, Argument]
    subfields: frozenset[str]
    nullable: bool


def declared_shape(
    schema: GraphQLSchema, kind: OperationType, name: str, encodable: frozenset[str]
) -> FieldShape:
    """The shape of root field `name` as `schema` declares it (read once, when a shortcut is
    built: the Strawberry fields are the one place that states arguments and defaults).
    Subfields: the scalar fields of its type that the shortcut can encode (`encodable`)."""
    root = {
        OperationType.QUERY: schema.query_type,
        OperationType.MUTATION: schema.mutation_type,
        OperationType.SUBSCRIPTION: schema.subscription_type,
    }[kind]
    assert root is not None, kind
    declared = root.fields[name]
    result = get_named_type(declared.type)
    assert isinstance(result, GraphQLObjectType), name
    scalars = frozenset(
        field_name
        for field_name, subfield in result.fields.items()
        if is_leaf_type(get_named_type(subfield.type)) and not subfield.args
    )
    return FieldShape(
        kind=kind,
        arguments={
            argument_name: _argument(argument.type, _default(argument))
            for argument_name, argument in declared.args.items()
        },
        subfields=scalars & encodable,
        nullable=not is_non_null_type(declared.type),
    )


def _default(value: GraphQLArgument | GraphQLInputField) -> Any:
    """A declared default as a Python value. A schema built from SDL keeps input fields'
    defaults as literals on their AST node only (`default_value` is Undefined there)."""
    if value.default_value is not Undefined:
        return value.default_value
    literal = value.ast_node.default_value if value.ast_node is not None else None
    return Undefined if literal is None else value_from_ast(literal, value.type)


def _argument(type_: GraphQLInputType, default: Any) -> Argument:
    item = get_named_type(type_)
    item_fields: frozenset[str] = frozenset()
    item_defaults: dict[str, Any] = {}
    if isinstance(item, GraphQLInputObjectType):
        item_fields = frozenset(item.fields)
        item_defaults = {
            name: default
            for name, input_field in item.fields.items()
            if (default := _default(input_field)) is not Undefined
        }
    return Argument(
        str(type_), None if default is Undefined else default, item_fields, item_defaults
    )


Execute = Callable[[LeaderboardService, Arguments, FieldShape], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class _Field:
    """A query or mutation field: its declared shape, how to run it."""

    shape: FieldShape
    execute: Execute

    @property
    def kind(self) -> OperationType:
        return self.shape.kind


async def _top(service: LeaderboardService, args: Arguments, _: FieldShape) -> Any:
    return await service.top(args["board"], args["period"], args["limit"], args["offset"])


async def _player(service: LeaderboardService, args: Arguments, _: FieldShape) -> Any:
    return await service.player(args["board"], args["period"], args["username"])


async def _neighborhood(service: LeaderboardService, args: Arguments, _: FieldShape) -> Any:
    return await service.neighborhood(
        args["board"], args["period"], args["username"], args["radius"]
    )


async def _increment(service: LeaderboardService, args: Arguments, _: FieldShape) -> Any:
    request = IncrementRequest(
        username=args["username"],
        delta=args["delta"],
        board=args["board"],
        event_id=args["eventId"],
    )
    (outcome,) = await service.increment([request])
    return outcome


async def _increments(service: LeaderboardService, args: Arguments, shape: FieldShape) -> Any:
    board = shape.arguments["increments"].item_defaults["board"]
    # Positional, in IncrementRequest's field order: one per item of a batch of up to 1000.
    requests = [
        IncrementRequest(
            item["username"], item["delta"], item.get("board", board), item.get("eventId")
        )
        for item in args["increments"]
    ]
    return await service.increment(requests)


_PLAYER_FIELDS = frozenset({"username", "score", "rank"})
_UPDATE_FIELDS = frozenset({"username", "board", "period", "score", "rank", "applied"})
# What the shortcut knows of each operation besides what the schema declares: how to run it,
# and which fields of its result the encoder below can write.
_OPERATIONS: dict[str, tuple[OperationType, frozenset[str], Execute]] = {
    "topPlayers": (OperationType.QUERY, _PLAYER_FIELDS, _top),
    "player": (OperationType.QUERY, _PLAYER_FIELDS, _player),
    "neighborhood": (OperationType.QUERY, _PLAYER_FIELDS, _neighborhood),
    "incrementScore": (OperationType.MUTATION, _UPDATE_FIELDS, _increment),
    "incrementScores": (OperationType.MUTATION, _UPDATE_FIELDS, _increments),
}


def _fields(schema: GraphQLSchema) -> dict[str, _Field]:
    return {
        name: _Field(declared_shape(schema, kind, name, encodable), execute)
        for name, (kind, encodable, execute) in _OPERATIONS.items()
    }


class Shaped(Protocol):
    """A shortcut's field: its declared shape, and what the shortcut does with it."""

    @property
    def shape(self) -> FieldShape: ...


FieldT = TypeVar("FieldT", bound=Shaped)


@dataclass(frozen=True, slots=True)
class Plan(Generic[FieldT]):
    """A validated simple document: which field, its arguments, what to select."""

    name: str
    field: FieldT
    response_key: str
    arguments: dict[str, ValueNode]
    variable_types: dict[str, str]
    variable_defaults: dict[str, Any]
    selections: tuple[str, ...]
    location: dict[str, int]


class Planner(Generic[FieldT]):
    """Plans documents that select one of `fields` plainly (parsed and validated once; the
    plans, and the documents that have none, cached within `cache_bytes`). A document over
    `max_chars` characters is not looked at: the normal path refuses it."""

    def __init__(
        self,
        schema: GraphQLSchema,
        fields: Mapping[str, FieldT],
        max_tokens: int,
        max_chars: int = MAX_DOCUMENT_CHARS,
        cache_bytes: int = PLAN_CACHE_BYTES,
    ) -> None:
        self._schema = schema
        self._fields = fields
        self._max_tokens = max_tokens
        self._max_chars = max_chars
        self._plans: ByteBoundedCache[tuple[str, str | None], Plan[FieldT] | None] = (
            ByteBoundedCache(cache_bytes)
        )

    @property
    def held_bytes(self) -> int:
        """What the cached plans keep alive."""
        return self._plans.held_bytes

    def plan(self, query: str, operation_name: str | None) -> Plan[FieldT] | None:
        """The plan of a document, None when it must take the normal path (cached both ways)."""
        if len(query) > self._max_chars:
            return None
        key = (query, operation_name)
        cached = self._plans.get(key)
        if cached is not None:
            return cached[0]
        try:
            document: DocumentNode | None = parse(query, max_tokens=self._max_tokens)
        except GraphQLError:
            document = None
        plan = None if document is None else self._make_plan(document, operation_name)
        # A plan keeps its document alive (its argument nodes hold the tokens and source).
        weight = (
            text_bytes(query)
            if plan is None or document is None
            else document_bytes(query, document)
        )
        self._plans.put(key, plan, weight + sys.getsizeof(operation_name))
        return plan

    def _make_plan(self, document: DocumentNode, operation_name: str | None) -> Plan[FieldT] | None:
        definitions = document.definitions
        if len(definitions) != 1 or not isinstance(definitions[0], OperationDefinitionNode):
            return None
        operation = definitions[0]
        if operation_name is not None and (
            operation.name is None or operation.name.value != operation_name
        ):
            return None
        selections = operation.selection_set.selections
        if operation.directives or len(selections) != 1 or not isinstance(selections[0], FieldNode):
            return None
        root = selections[0]
        field = self._fields.get(root.name.value)
        if field is None or field.shape.kind is not operation.operation or root.directives:
            return None
        subfields = _plain_subfields(root, field.shape.subfields)
        if subfields is None or not _valid(self._schema, document):
            return None
        variable_types: dict[str, str] = {}
        variable_defaults: dict[str, Any] = {}
        for definition in operation.variable_definitions or ():
            if definition.directives:
                return None
            variable_types[definition.variable.name.value] = _type_name(definition.type)
            if definition.default_value is not None:
                variable_defaults[definition.variable.name.value] = _literal(
                    definition.default_value
                )
        location = root.loc.source.get_location(root.loc.start) if root.loc else None
        if location is None:
            return None
        return Plan(
            name=root.name.value,
            field=field,
            response_key=(root.alias or root.name).value,
            arguments={argument.name.value: argument.value for argument in root.arguments or ()},
            variable_types=variable_types,
            variable_defaults=variable_defaults,
            selections=subfields,
            location={"line": location.line, "column": location.column},
        )


def plain_arguments(plan: Plan[Any], variables: Mapping[str, Any]) -> Arguments | None:
    """The field's arguments, or None when a value is not plainly of its declared type (or a
    required variable is missing): the normal path reports those."""
    arguments: Arguments = {}
    for name, declared in plan.field.shape.arguments.items():
        node = plan.arguments.get(name)
        if node is None:
            value = declared.default
        elif isinstance(node, VariableNode):
            variable = node.name.value
            if variable in variables:
                value = variables[variable]
            elif variable in plan.variable_defaults:
                value = plan.variable_defaults[variable]
            elif plan.variable_types[variable].endswith("!"):
                return None  # a required variable left out: the normal path says so
            else:
                value = declared.default
            if not _plainly(value, plan.variable_types[variable], declared):
                return None
        else:
            value = _literal(node)
        if not _plainly(value, declared.type_name, declared):
            return None
        arguments[name] = value
    return arguments


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
            result = await plan.field.execute(self._service, arguments, plan.field.shape)
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


def _valid(schema: GraphQLSchema, document: DocumentNode) -> bool:
    return not validate(schema, document)


def _plain_subfields(root: FieldNode, allowed: frozenset[str]) -> tuple[str, ...] | None:
    if root.selection_set is None:
        return None
    names: list[str] = []
    for selection in root.selection_set.selections:
        if (
            not isinstance(selection, FieldNode)
            or selection.alias is not None
            or selection.directives
            or selection.arguments
            or selection.selection_set is not None
            or selection.name.value not in allowed
        ):
            return None
        if selection.name.value in names:
            return None  # repeats are bounded by the normal path's limits
        names.append(selection.name.value)
    return tuple(names)


def _type_name(node: TypeNode) -> str:
    if isinstance(node, NonNullTypeNode):
        return _type_name(node.type) + "!"
    if isinstance(node, ListTypeNode):
        return "[" + _type_name(node.type) + "]"
    assert isinstance(node, NamedTypeNode)
    return node.name.value


def _literal(node: ValueNode) -> Any:
    if isinstance(node, IntValueNode):
        return int(node.value)
    if isinstance(node, StringValueNode):
        return node.value
    if isinstance(node, NullValueNode):
        return None
    if isinstance(node, BooleanValueNode):
        return node.value
    return _NOT_PLAIN


_NOT_PLAIN = object()


def _plainly(value: Any, type_name: str, declared: Argument) -> bool:
    """Whether a value is of a type exactly as GraphQL would take it, with no coercion
    (`declared`: the argument it is given to, whose input fields a list item may have)."""
    if value is None:
        return not type_name.endswith("!")
    base = type_name.rstrip("!")
    if base == _INCREMENT_LIST:
        keys = repeat(declared.item_fields)
        return isinstance(value, list) and all(map(_plain_increment, value, keys))
    if base == "Int":
        return _plain_int(value)
    if base in ("String", "ID"):
        return isinstance(value, str)
    return False


def _plain_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value in _INT32


def _plain_increment(item: Any, keys: frozenset[str]) -> bool:
    """A ScoreIncrement input exactly as GraphQL would take it: no coercion, no nulls where
    a value is required (the normal path reports those)."""
    # What `_plainly` checks for each field's type, inlined: this runs once per item of a
    # batch. A board left out is plain ("" stands in for it); one sent as null is not.
    if not isinstance(item, dict) or not item.keys() <= keys:
        return False
    event_id = item.get("eventId")
    return (
        isinstance(item.get("username"), str)
        and _plain_int(item.get("delta"))
        and isinstance(item.get("board", ""), str)
        and (event_id is None or isinstance(event_id, str))
    )


def _encode(result: Any, selections: tuple[str, ...]) -> Any:
    if result is None:
        return None
    if isinstance(result, list):
        # A list the service returns holds one type (outcomes or players): one encoder.
        if not result:
            return []
        encode = _encoder(type(result[0]), selections)
        return [encode(item) for item in result]
    return _encoder(type(result), selections)(result)


_PATHS: dict[type, dict[str, str]] = {
    RankedPlayer: {"username": "username", "score": "score", "rank": "rank"},
    IncrementOutcome: {
        "username": "increment.username",
        "board": "increment.board",
        "period": "increment.period",
        "score": "score",
        "rank": "rank",
        "applied": "applied",
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
