"""Assembling the Strawberry schema, with its request limits, caches and error codes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import strawberry
from graphql import GraphQLError
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    SchemaExtension,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig
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
    introspection: bool = True,
    extra_extensions: Sequence[ExtensionFactory] = (),
) -> LeaderboardSchema:
    """The schema with its abuse limits: document size, depth and aliases are bounded before
    anything runs; parsed and validated documents are cached."""
    # Factories, not instances: Strawberry builds fresh extensions for every request.
    extensions: list[ExtensionFactory] = [
        lambda: MaxTokensLimiter(max_token_count=max_tokens),
        lambda: ParserCache(maxsize=1024),
        lambda: QueryDepthLimiter(max_depth=max_depth),
        lambda: MaxAliasesLimiter(max_alias_count=max_aliases),
        lambda: ValidationCache(maxsize=1024),
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
