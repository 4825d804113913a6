"""Assembling the Strawberry schema, with its request limits, caches and error codes."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import strawberry
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)
from graphql.validation import ASTValidationRule, NoSchemaIntrospectionCustomRule
from strawberry.extensions import (
    AddValidationRules,
    MaxTokensLimiter,
    ParserCache,
    SchemaExtension,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema import validate_document
from strawberry.types import ExecutionContext
from strawberry.types.base import get_object_definition
from strawberry.utils.str_converters import to_camel_case

from schema.errors import assign_codes
from schema.operations import Mutation, Query, Subscription
from schema.scalars import LONG, Long

ExtensionFactory = Callable[[], SchemaExtension] | type[SchemaExtension]

SDL_PATH = Path(__file__).with_name("schema.graphql")
"""The live schema, exported; a test fails when it drifts from the code."""


class LeaderboardSchema(strawberry.Schema):
    """The Strawberry schema whose errors all carry the contract's codes."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        assign_codes(errors)


Validator = Callable[
    [GraphQLSchema, DocumentNode, tuple[type[ASTValidationRule], ...]], list[GraphQLError]
]


@dataclasses.dataclass(frozen=True, slots=True)
class Shape:
    """What a selection set costs, its fragments expanded."""

    depth: int = 0
    """Levels of fields with selections in it, as Strawberry's QueryDepthLimiter counts them
    (`{ leaderboards { id } }` is 1); introspection fields apart: graphql-core bounds those."""
    aliases: int = 0
    """Aliased fields in and below it."""
    names: Counter[str] = dataclasses.field(default_factory=Counter)
    """How often each response name is selected in it (fields of spread fragments included)."""
    most_repeated: tuple[str, int] = ("", 0)
    """The response name selected most often in one selection set at or below it, and how often."""


def _count(item: tuple[str, int]) -> int:
    return item[1]


class DocumentShape:
    """Measures a document's operations in time linear in its size: each fragment is measured
    once, however often it is spread (a fragment cycle or an unknown fragment counts as nothing:
    validation refuses those)."""

    def __init__(self, document: DocumentNode) -> None:
        self._fragments = {
            definition.name.value: definition
            for definition in document.definitions
            if isinstance(definition, FragmentDefinitionNode)
        }
        self._measured: dict[str, Shape] = {}
        self._measuring: set[str] = set()
        self.operations = [
            definition
            for definition in document.definitions
            if isinstance(definition, OperationDefinitionNode)
        ]

    def measure(self, selection_set: SelectionSetNode | None) -> Shape:
        """The shape of a selection set."""
        depth = aliases = 0
        names: Counter[str] = Counter()
        most_repeated = ("", 0)
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                inner = self.measure(selection.selection_set)
                if selection.selection_set and not selection.name.value.startswith("__"):
                    depth = max(depth, 1 + inner.depth)
                aliases += inner.aliases + (selection.alias is not None)
                names[(selection.alias or selection.name).value] += 1
            else:
                if isinstance(selection, InlineFragmentNode):
                    inner = self.measure(selection.selection_set)
                else:
                    assert isinstance(selection, FragmentSpreadNode)
                    inner = self._fragment(selection.name.value)
                depth = max(depth, inner.depth)
                aliases += inner.aliases
                names.update(inner.names)
            most_repeated = max(most_repeated, inner.most_repeated, key=_count)
        if names:
            most_repeated = max(most_repeated, names.most_common(1)[0], key=_count)
        return Shape(depth, aliases, names, most_repeated)

    def _fragment(self, name: str) -> Shape:
        if name in self._measured:
            return self._measured[name]
        fragment = self._fragments.get(name)
        if fragment is None or name in self._measuring:
            return Shape()
        self._measuring.add(name)
        self._measured[name] = self.measure(fragment.selection_set)
        self._measuring.discard(name)
        return self._measured[name]


class SafeParserCache(ParserCache):
    """Strawberry's ParserCache, except that a document that does not parse is left to
    Strawberry's own parse, which turns the syntax error into a GraphQL error. Raised from the
    cache, the error escaped subscriptions: the WebSocket client never heard back."""

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        with contextlib.suppress(GraphQLError):
            context.graphql_document = self.cached_parse_document(
                context.query, **context.parse_options
            )
        yield


class RequestLimits(SchemaExtension):
    """Refuse a document deeper than `max_depth`, with more than `max_aliases` aliases, or
    selecting one response name more than `max_repeats` times in one selection set (fragments
    expanded), before anything else looks at it; then validate it (cached).

    This replaces Strawberry's QueryDepthLimiter, MaxAliasesLimiter and ValidationCache:
    the first two walk a fragment again at every spread, so a few dozen fragments that each
    spread the next one twice kept the event loop busy for ever. Repeated names are bounded
    because graphql-core compares every pair of them (OverlappingFieldsCanBeMergedRule): a
    2,000-token document repeating one field took most of a second of CPU to validate."""

    def __init__(
        self, *, max_depth: int, max_aliases: int, max_repeats: int, validate: Validator
    ) -> None:
        self.max_depth = max_depth
        self.max_aliases = max_aliases
        self.max_repeats = max_repeats
        self.validate = validate

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None and context.pre_execution_errors is None:
            context.pre_execution_errors = self._limit_errors(document) or self.validate(
                context.schema._schema, document, tuple(context.validation_rules)
            )
        yield

    def _limit_errors(self, document: DocumentNode) -> list[GraphQLError]:
        shape = DocumentShape(document)
        errors = []
        aliases = 0
        most_repeated = ("", 0)
        for operation in shape.operations:
            measured = shape.measure(operation.selection_set)
            aliases += measured.aliases
            most_repeated = max(most_repeated, measured.most_repeated, key=_count)
            if measured.depth > self.max_depth:
                name = operation.name.value if operation.name else "anonymous"
                errors.append(
                    GraphQLError(
                        f"'{name}' exceeds maximum operation depth of {self.max_depth}",
                        operation,
                    )
                )
        if aliases > self.max_aliases:
            errors.append(GraphQLError(f"{aliases} aliases found. Allowed: {self.max_aliases}"))
        name, repeats = most_repeated
        if repeats > self.max_repeats:
            errors.append(
                GraphQLError(
                    f"'{name}' is selected {repeats} times in one selection set. "
                    f"Allowed: {self.max_repeats}"
                )
            )
        return errors


ROOT_FIELDS = frozenset(
    field.graphql_name or to_camel_case(field.python_name)
    for root in (Query, Mutation, Subscription)
    for field in get_object_definition(root, strict=True).fields
)
"""Names of the operations' root fields."""


def build_schema(
    *,
    max_depth: int = 8,
    max_aliases: int = 30,
    max_tokens: int = 2_000,
    max_repeats: int = 10,
    introspection: bool = True,
    extra_extensions: Sequence[ExtensionFactory] = (),
) -> LeaderboardSchema:
    """The schema with its abuse limits: document size, depth, aliases and repeated fields are
    bounded before anything runs; parsed and validated documents are cached."""
    validate: Validator = functools.lru_cache(maxsize=1024)(validate_document)
    # Factories, not instances: Strawberry builds fresh extensions for every request.
    extensions: list[ExtensionFactory] = [
        lambda: MaxTokensLimiter(max_token_count=max_tokens),
        lambda: SafeParserCache(maxsize=1024),
        lambda: RequestLimits(
            max_depth=max_depth, max_aliases=max_aliases, max_repeats=max_repeats, validate=validate
        ),
        *extra_extensions,
    ]
    if not introspection:
        extensions.append(lambda: AddValidationRules([NoSchemaIntrospectionCustomRule]))
    return LeaderboardSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions,
        config=StrawberryConfig(scalar_map={Long: LONG}),
    )


def export_sdl() -> str:
    """The schema's SDL, as written to `schema/schema.graphql`."""
    return build_schema().as_str() + "\n"


def write_sdl(path: Path = SDL_PATH) -> Path:
    """Write the SDL file and return its path."""
    path.write_text(export_sdl())
    return path
