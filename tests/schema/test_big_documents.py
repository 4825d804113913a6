"""Big documents take turns: over `big_document_chars` characters, a document's parse,
validation and execution run one at a time, so their parses (graphql-core lexes a comment a
character at a time) never pile up between two steps of another request (issue 17)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import graphql
import pytest
from graphql.language import TokenKind
from strawberry.extensions import SchemaExtension

import schema.build
from schema.build import build_schema
from schema.documents import without_comments
from tests.support.documents import padded_document

pytestmark = pytest.mark.unit

BIG = 2_048
HEAD = "{ __typename }"


class Overlap:
    """How many operations run at once now, and at most."""

    def __init__(self) -> None:
        self.now = 0
        self.most = 0


def counting(overlap: Overlap) -> type[SchemaExtension]:
    """An extension counting the operations inside Strawberry's execute at once."""

    class Counting(SchemaExtension):
        async def on_operation(self) -> AsyncIterator[None]:
            overlap.now += 1
            overlap.most = max(overlap.most, overlap.now)
            # Let every other started operation reach this point too, if it may.
            for _ in range(5):
                await asyncio.sleep(0)
            yield
            overlap.now -= 1

    return Counting


async def _most_at_once(length: int, big_document_chars: int | None) -> int:
    overlap = Overlap()
    schema = build_schema(
        big_document_chars=big_document_chars, extra_extensions=[counting(overlap)]
    )
    results = await asyncio.gather(
        *(schema.execute(padded_document(HEAD, length)) for _ in range(6))
    )
    assert all(result.errors is None for result in results), results
    assert all(result.data == {"__typename": "Query"} for result in results)
    return overlap.most


@pytest.mark.parametrize("length", [BIG + 1, 16_384])
async def test_big_documents_run_one_at_a_time(length: int) -> None:
    assert await _most_at_once(length, BIG) == 1


async def test_the_next_big_document_waits_for_a_rest_after_one() -> None:
    # Not timed: the turn is still taken when the answer is out, and given back later.
    built = build_schema(big_document_chars=BIG)
    result = await built.execute(padded_document(HEAD, BIG + 1))
    assert result.data == {"__typename": "Query"}
    turns = built._big_turns
    assert turns.locked()
    async with asyncio.timeout(30):
        async with turns:
            pass
    result = await built.execute(padded_document(HEAD, BIG))
    assert result.data == {"__typename": "Query"}
    assert not turns.locked()


async def test_documents_within_the_bound_run_at_once() -> None:
    assert await _most_at_once(BIG, BIG) == 6


async def test_without_the_bound_big_documents_run_at_once() -> None:
    # What the bound changes: the same big documents overlap without it.
    assert await _most_at_once(BIG + 1, None) == 6


SAME_TOKENS = [
    "{ __typename } # a comment",
    '{ player(username: "#not a comment") { rank } } # one',
    '{ a(s: """block \\""" # still the string\n"" "#""") } #\n# two\r\n{ b }',
    '{ a(s: "\\" # escaped quote, in the string") } #x',
    "query #q\n($v: Int = 1) { a(limit: $v) } #\u00e9\U0001f600 end",
]


def _tokens(text: str) -> list[tuple[str, str | None, int, int]]:
    document = graphql.parse(text)
    token = document.loc.start_token if document.loc else None
    seen = []
    while token is not None:
        # The end of the text moves when its last line has a comment: only a syntax error
        # points there, and those are reported from the text as sent (the test below).
        if token.kind not in (TokenKind.COMMENT, TokenKind.EOF):
            seen.append((token.kind.value, token.value, token.line, token.column))
        token = token.next
    return seen


@pytest.mark.parametrize("text", SAME_TOKENS)
def test_comments_are_removed_without_moving_a_token(text: str) -> None:
    stripped = without_comments(text)
    assert len(stripped) < len(text) or "#" not in text
    assert _tokens(stripped) == _tokens(text)


@pytest.mark.parametrize(
    "text",
    [
        '{ a(s: "unterminated # x) }',
        '{ a(s: """unterminated # x) }',
        "{ a #\ud800 b }",  # a lone surrogate ends a comment: the lexer refuses it
        "{ topPlayers # no closing brace",
    ],
)
async def test_a_syntax_error_is_reported_from_the_text_as_sent(text: str) -> None:
    with pytest.raises(graphql.GraphQLSyntaxError) as raised:
        graphql.parse(text)
    result = await build_schema().execute(text)
    assert result.errors is not None
    assert [error.message for error in result.errors] == [raised.value.message]
    assert [error.locations for error in result.errors] == [raised.value.locations]


async def test_documents_differing_in_their_comments_are_parsed_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    parsed: list[int] = []
    original = graphql.parse

    def counting_parse(source: str, **options: Any) -> Any:
        parsed.append(len(source))
        return original(source, **options)

    monkeypatch.setattr(schema.build, "parse", counting_parse)
    built = build_schema(big_document_chars=BIG)
    for _ in range(5):
        result = await built.execute(padded_document(HEAD, 16_384))
        assert result.errors is None
        assert result.data == {"__typename": "Query"}
    assert parsed == [len(HEAD) + 2]
