"""Document size: the character cap, and caches whose weights bound what they keep alive."""

from __future__ import annotations

import gc
import tracemalloc

import pytest
from graphql import GraphQLSchema, parse, validate

from schema.build import build_schema
from schema.documents import (
    MAX_DOCUMENT_CHARS,
    ByteBoundedCache,
    document_bytes,
    text_bytes,
    too_long,
)
from tests.support.documents import dense_document, padded_document

pytestmark = pytest.mark.unit


def fresh(text: str) -> str:
    """A copy of `text` that shares no memory with it (so it is traced when made)."""
    return "".join(list(text))


SHAPES = {
    # Token-dense shapes (what a token keeps alive does not depend on their number).
    "bare fields": "{ " + "a " * 500 + "}",
    "fields with arguments": "{ "
    + " ".join(f'p{i}(username: "a") {{ rank }}' for i in range(100))
    + " }",
    "many arguments": "{ f(" + " ".join(f"a{i}: {i}" for i in range(300)) + ") }",
    "list of ints": "{ f(a: [" + " ".join(str(i) for i in range(1_000)) + "]) }",
    "list of objects": "{ f(a: [" + " ".join("{a: 1}" for _ in range(200)) + "]) }",
    "variables": "query(" + " ".join(f"$v{i}: Int" for i in range(250)) + ") { a }",
    "comment": padded_document("{ __typename }", MAX_DOCUMENT_CHARS),
    "string": '{ f(a: "' + "x" * 16_000 + '") }',
    "block string": '{ f(a: """' + "x" * 16_000 + '""") }',
    "non-latin string": '{ f(a: "' + "\u540d" * 8_000 + '") }',
    "astral comment": "{ a } #" + "\U0001f600" * 8_000,
    "many comments": "{ a }" + "\n#" * 990,
    "the dense document of these tests": dense_document(0),
}


@pytest.fixture(scope="module")
def graphql_schema() -> GraphQLSchema:
    """The API's schema, validation warmed up: graphql-core's validation keeps about 250 KB
    of method objects after its first hundred runs, then no more."""
    built = build_schema()._schema
    for _ in range(150):
        validate(built, parse("{ __typename }"))
    return built


@pytest.mark.parametrize("text", SHAPES.values(), ids=SHAPES.keys())
def test_a_documents_weight_bounds_what_it_keeps_alive(
    graphql_schema: GraphQLSchema, text: str
) -> None:
    # Parsed, and validated as the schema's cache keeps it (errors included).
    validate(graphql_schema, parse(text, max_tokens=2_000))  # once per shape, not per document
    gc.collect()
    tracemalloc.start()
    try:
        query = fresh(text)
        document = parse(query, max_tokens=2_000)
        errors = validate(graphql_schema, document)
        gc.collect()
        kept, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert errors is not None
    assert kept <= document_bytes(query, document), (kept, document_bytes(query, document))


def test_the_cache_holds_bounded_bytes() -> None:
    cache: ByteBoundedCache[str, int | None] = ByteBoundedCache(100_000)
    for number in range(1_000):
        cache.put(str(number), number, 1_000)
        assert cache.held_bytes <= 100_000
    assert len(cache) == 100
    assert cache.get("999") == (999,)
    assert cache.get("0") is None  # the least recently used went first
    cache.put("huge", 1, 100_001)  # heavier than the budget: not stored, nothing evicted
    assert cache.get("huge") is None
    assert len(cache) == 100
    cache.put("none", None, 10)
    assert cache.get("none") == (None,)


def test_the_cap_counts_every_character() -> None:
    assert too_long("{ a }", 5) is None
    for padding in (" ", "#", "\n", ","):
        refused = too_long("{ a }" + padding, 5)
        assert refused is not None
        assert refused.extensions == {"code": "BAD_USER_INPUT"}
        assert "6 characters" in refused.message
    assert text_bytes("x" * 1_000) > 1_000


async def test_the_schema_refuses_a_document_over_its_cap_before_parsing() -> None:
    schema = build_schema(max_document_chars=100)
    result = await schema.execute("{ __typename }")
    assert result.errors is None
    for document in (
        "{ __typename } #" + "x" * 90,  # a comment
        '{ leaderboards { id } } # "' + "x" * 90,
        '{ player(username: "' + "x" * 90 + '") { rank } }',  # a string
        "{ __typename " + " " * 90 + "}",  # white space
        "{ __typename } #" + "x" * 200 + "\n{",  # would not even parse
    ):
        result = await schema.execute(document)
        assert result.data is None
        assert result.errors is not None
        [error] = result.errors
        assert error.extensions == {"code": "BAD_USER_INPUT"}
        assert "larger than the limit of 100" in error.message
    stream = await schema.subscribe("subscription { topPlayersChanged { rank } } #" + "x" * 100)
    [first] = [result async for result in stream]
    assert first.errors is not None
    assert first.errors[0].extensions == {"code": "BAD_USER_INPUT"}


async def test_the_schemas_document_cache_holds_bounded_bytes() -> None:
    # Each dense document keeps about 0.4 MB alive once parsed and validated (weighed, and
    # the weights bound the memory: above): 20 of them held 8 MB in a cache of 1,024
    # entries. The cache's budget bounds them, however many there are.
    budget = 2 * 1024 * 1024
    schema = build_schema(document_cache_bytes=budget)
    weights = []
    for number in range(20):
        result = await schema.execute(dense_document(number))
        assert result.errors, result  # `$v` is never used: refused, but parsed and cached
        weights.append(schema.documents.held_bytes)
    assert max(weights) <= budget
    assert weights[-1] > budget - 1024 * 1024  # it does cache
    assert len(schema.documents) < 20
