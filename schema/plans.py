"""Planning a simple document once, for the shortcuts (schema/fast_path.py for queries and
mutations, schema/fast_subscriptions.py for subscriptions).

A plan is a document of one root field with plain selections (no fragments, directives,
aliases on subfields), parsed and validated against the schema once and cached by its text
within a byte budget. The field's argument names, types, defaults and selectable subfields are
read from the built schema (`declared_shape`), so the Strawberry fields in
schema/operations.py stay the one place that states them. `plain_arguments` takes a request's
values only when GraphQL would take them as they are, with no coercion; anything else
returns None and the request takes the normal path.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import repeat
from typing import Any, Generic, Protocol, TypeVar

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

from schema.documents import (
    MAX_DOCUMENT_CHARS,
    PLAN_CACHE_BYTES,
    ByteBoundedCache,
    document_bytes,
    text_bytes,
)
from store.models import MAX_EXACT_SCORE

_INT32 = range(-(2**31), 2**31)
_INT32_MIN, _INT32_MAX = _INT32[0], _INT32[-1]
_INCREMENT_LIST = "[ScoreIncrement!]"
_NAME_LIST = "[String!]"

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


def _argument(type_: GraphQLInputType, default: Any) -> Argument:
    item = get_named_type(type_)
    item_fields: frozenset[str] = frozenset()
    item_defaults: dict[str, Any] = {}
    if isinstance(item, GraphQLInputObjectType):
        item_fields = frozenset(item.fields)
        item_defaults = {
            name: default_value
            for name, input_field in item.fields.items()
            if (default_value := _default(input_field)) is not Undefined
        }
    return Argument(
        str(type_), None if default is Undefined else default, item_fields, item_defaults
    )


def _default(declared: GraphQLArgument | GraphQLInputField) -> Any:
    """A declared default value, Undefined when there is none.

    A schema built from SDL (`graphql.build_schema`, as server/app.py builds the one the
    shortcuts plan against) keeps defaults as literals on the AST node only, with
    `default_value` Undefined: read them from there."""
    if declared.default_value is not Undefined:
        return declared.default_value
    node = declared.ast_node
    if node is None or node.default_value is None:
        return Undefined
    return value_from_ast(node.default_value, declared.type)


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
    if base == "Long":
        return (
            isinstance(value, int) and not isinstance(value, bool) and abs(value) <= MAX_EXACT_SCORE
        )
    if base in ("String", "ID"):
        return isinstance(value, str)
    if base == "Boolean":
        return isinstance(value, bool)
    if base == _NAME_LIST:
        return isinstance(value, list) and all(isinstance(item, str) for item in value)
    return False


def _plain_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value in _INT32


def _plain_increment(item: Any, keys: frozenset[str]) -> bool:
    """A ScoreIncrement input exactly as GraphQL would take it: no coercion, no nulls where
    a value is required (the normal path reports those)."""
    # What `_plainly` checks for each field's type, inlined: this runs once per item of a
    # batch. A board left out is plain ("" stands in for it); one sent as null is not.
    # Exact types (JSON gives no subclasses; a subclass takes the normal path) and the
    # Int range compared inline: ~0.3 against ~0.4 us per item (timeit).
    if type(item) is not dict or not item.keys() <= keys:
        return False
    delta = item.get("delta")
    event_id = item.get("eventId")
    return (
        type(item.get("username")) is str
        and type(delta) is int
        and _INT32_MIN <= delta <= _INT32_MAX
        and type(item.get("board", "")) is str
        and (event_id is None or type(event_id) is str)
    )
