"""Assembling the Strawberry schema, with its request limits, caches and error codes."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections import Counter
from collections.abc import AsyncGenerator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import strawberry
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    parse,
)
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import AddValidationRules, MaxTokensLimiter, SchemaExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.base import get_object_definition
from strawberry.types.execution import PreExecutionError
from strawberry.utils.str_converters import to_camel_case

from schema.documents import (
    CACHE_BYTES,
    MAX_DOCUMENT_CHARS,
    ByteBoundedCache,
    document_bytes,
    too_long,
    without_comments,
)
from schema.errors import assign_codes
from schema.operations import Mutation, Query, Subscription
from schema.scalars import LONG, Long

ExtensionFactory = Callable[[], SchemaExtension] | type[SchemaExtension]

Results = AsyncGenerator[Any, None]
"""What `Schema.stream` yields: execution results (the first may be a PreExecutionError)."""

SDL_PATH = Path(__file__).with_name("schema.graphql")
"""The live schema, exported; a test fails when it drifts from the code."""


class LeaderboardSchema(strawberry.Schema):
    """The Strawberry schema whose errors all carry the contract's codes, which refuses a
    document over `max_document_chars` before anything (a cache, the parser) looks at it,
    and runs documents over `big_document_chars` one at a time, with a rest after each."""

    def __init__(
        self,
        *,
        max_document_chars: int,
        documents: DocumentCache,
        big_document_chars: int | None = None,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.max_document_chars = max_document_chars
        self.big_document_chars = big_document_chars
        """None: every document runs at once."""
        # One turn for all big documents, and a rest after each as long as it ran: their
        # parse and validation hold the event loop (graphql-core lexes white space and
        # strings a character at a time: ~7 ms for 16 K characters), so big documents
        # take at most half of it, one at a time.
        self._big_turns = asyncio.Semaphore(1)
        self.documents = documents
        """Parsed and checked documents by text (what `CachedDocuments` reads and fills)."""

    async def execute(self, query: str | None, *args: Any, **kwargs: Any) -> ExecutionResult:
        """Strawberry's execute, for a document within the size limit."""
        refused = too_long(query or "", self.max_document_chars)
        if refused is not None:
            return ExecutionResult(data=None, errors=[refused])
        if self.big_document_chars is None or len(query or "") <= self.big_document_chars:
            return await super().execute(query, *args, **kwargs)
        await self._big_turns.acquire()
        started = time.perf_counter()
        try:
            return await super().execute(query, *args, **kwargs)
        finally:
            # The next big document waits as long again (its answer does not): one turn
            # alone still kept a normal request's p50 over 0.5 s beside 8 clients padding
            # with white space, since every step of it waited behind one big parse.
            asyncio.get_running_loop().call_later(
                time.perf_counter() - started, self._big_turns.release
            )

    async def stream(self, query: str | None, *args: Any, **kwargs: Any) -> Results:
        """Strawberry's stream (subscriptions over WebSocket), for a document within the size
        limit; over it, the one result is the error, as for a document that does not validate."""
        refused = too_long(query or "", self.max_document_chars)
        if refused is not None:
            return _refusal(refused)
        return await super().stream(query, *args, **kwargs)

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        assign_codes(errors)


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


async def _refusal(error: GraphQLError) -> Results:
    yield PreExecutionError(data=None, errors=[error])


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


@dataclasses.dataclass(slots=True)
class ParsedDocument:
    """A document parsed once, and what its pre-execution checks (request limits, validation)
    found, once they ran."""

    document: DocumentNode
    errors: list[GraphQLError] | None = None


DocumentCache = ByteBoundedCache[str, ParsedDocument]


class CachedDocuments(SchemaExtension):
    """Parse a document, and check it (request limits and validation), once per text: later
    requests take both from a cache bounded in bytes (schema/documents.py).

    A document that does not parse is left to Strawberry's own parse, which turns the syntax
    error into a GraphQL error. Raised from here, the error escaped subscriptions: the
    WebSocket client never heard back."""

    def __init__(self, cache: DocumentCache) -> None:
        self.cache = cache
        self.key: str | None = None
        """The text the document is cached by (extensions are made per request)."""

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        query = context.query
        if query is not None:
            self.key = query
            cached = self.cache.get(query)
            if cached is None:
                # Comments' text skipped at C speed, and documents differing only in their
                # comments share an entry: unique comments no longer cost a parse each.
                # Only a text that parses is used; a syntax error is Strawberry's to report
                # from the text as sent (its locations are the client's).
                stripped = without_comments(query)
                if stripped is not query:
                    cached = self.cache.get(stripped)
                    self.key = stripped
            if cached is not None:
                context.graphql_document = cached[0].document
            else:
                with contextlib.suppress(GraphQLError):
                    key = self.key
                    document = parse(key, **context.parse_options)
                    context.graphql_document = document
                    self.cache.put(key, ParsedDocument(document), document_bytes(key, document))
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        cached = self.cache.get(self.key) if self.key is not None else None
        parsed = cached[0] if cached is not None else None
        if context.pre_execution_errors is not None:
            # Refused already by a request-dependent check: nothing about the text to keep.
            yield
            return
        if parsed is None or parsed.document is not context.graphql_document:
            yield  # not a document of the cache: checked as usual
            return
        if parsed.errors is not None:
            # Strawberry validates only when no extension has found the errors already.
            context.pre_execution_errors = parsed.errors
            yield
            return
        yield
        parsed.errors = context.pre_execution_errors


class RequestLimits(SchemaExtension):
    """Refuse a document deeper than `max_depth`, with more than `max_aliases` aliases, or
    selecting one response name more than `max_repeats` times in one selection set (fragments
    expanded), before Strawberry validates it.

    This replaces Strawberry's QueryDepthLimiter and MaxAliasesLimiter, which walk a
    fragment again at every spread, so a few dozen fragments that each spread the next one
    twice kept the event loop busy for ever. Repeated names are bounded because graphql-core
    compares every pair of them (OverlappingFieldsCanBeMergedRule): a 2,000-token document
    repeating one field took most of a second of CPU to validate."""

    def __init__(self, *, max_depth: int, max_aliases: int, max_repeats: int) -> None:
        self.max_depth = max_depth
        self.max_aliases = max_aliases
        self.max_repeats = max_repeats

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None and context.pre_execution_errors is None:
            # Left None when within the limits: Strawberry then validates.
            context.pre_execution_errors = self._limit_errors(document) or None
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
    max_document_chars: int = MAX_DOCUMENT_CHARS,
    big_document_chars: int | None = None,
    document_cache_bytes: int = CACHE_BYTES,
    introspection: bool = True,
    extra_extensions: Sequence[ExtensionFactory] = (),
) -> LeaderboardSchema:
    """The schema with its abuse limits: document size (characters and tokens), depth,
    aliases and repeated fields are bounded before anything runs; parsed and checked
    documents are cached, in at most `document_cache_bytes`; documents over
    `big_document_chars` (None: no such bound) run one at a time."""
    documents: DocumentCache = ByteBoundedCache(document_cache_bytes)
    # Factories, not instances: Strawberry builds fresh extensions for every request.
    # The extra extensions (metrics, the transport rules) come before the document cache:
    # their verdicts depend on the request, not on the text, and an extension's hooks wrap
    # those listed after it, so the cache never stores what they decided.
    extensions: list[ExtensionFactory] = [
        lambda: MaxTokensLimiter(max_token_count=max_tokens),
        *extra_extensions,
        lambda: CachedDocuments(documents),
        lambda: RequestLimits(
            max_depth=max_depth, max_aliases=max_aliases, max_repeats=max_repeats
        ),
    ]
    if not introspection:
        extensions.append(lambda: AddValidationRules([NoSchemaIntrospectionCustomRule]))
    return LeaderboardSchema(
        max_document_chars=max_document_chars,
        big_document_chars=big_document_chars,
        documents=documents,
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
