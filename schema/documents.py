"""The size of a GraphQL document: the cap on its characters, and caches by document text
that hold a bounded number of bytes, not of entries.

A document's text is the one input a client may make as large as the body limit, and
comments and string literals are single tokens: a token limit alone lets a 250 KB comment
through, and a cache of 1,024 such documents held a gigabyte. So every document is refused
above `MAX_DOCUMENT_CHARS` before any cache or parser sees it, and each cache weighs what
an entry keeps alive (the text, its tokens and syntax tree) against a byte budget.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Hashable
from typing import Generic, TypeVar

from cachetools import LRUCache
from graphql import DocumentNode, GraphQLError

from resolvers.errors import ErrorCode

MAX_DOCUMENT_CHARS = 16_384
"""Characters a document may have, comments, strings and white space included. The API's
real documents are under 1 KB, GraphiQL's introspection query about 3 KB, and a document at
the 2,000-token limit written one field per line about 10 KB; parsing 16 KB of comment costs
about 3 ms of the event loop, where 260 KB cost 48 ms."""

CACHE_BYTES = 8 * 1024 * 1024
"""What the schema's cache of parsed and checked documents may keep alive: a usual document
weighs 30 to 60 KB, so some hundreds of distinct documents stay parsed."""

PLAN_CACHE_BYTES = 4 * 1024 * 1024
"""What each shortcut's cache of plans (schema/fast_path.py) may keep alive: its documents
are the few hot ones."""

TOKEN_BYTES = 800
"""An upper bound of what one token of a parsed document keeps alive: the token, its share
of the syntax tree and locations, and of the validation errors cached with it (measured
at most about 560 bytes, for a document of bare fields; tests/schema/test_documents.py)."""

ENTRY_BYTES = 400
"""What a cache entry costs besides its document: key tuple, links, the value's object."""

DOCUMENT_BYTES = 32_000
"""What a parsed and validated document keeps alive whatever its size (measured about
20 KB, most of it graphql-core's validation; with a margin: the full suite measured more)."""


def too_long(query: str, max_chars: int) -> GraphQLError | None:
    """The error refusing a document over `max_chars` characters, None when within."""
    if len(query) <= max_chars:
        return None
    return GraphQLError(
        f"document of {len(query)} characters is larger than the limit of {max_chars} "
        "(comments and strings included)",
        extensions={"code": ErrorCode.BAD_USER_INPUT.value},
    )


# Block strings, strings and comments, as graphql-core's lexer reads them from the left (the
# quantifiers are possessive: no backtracking, whatever the text). A comment stops where the
# lexer's does: at a line terminator or a lone surrogate (an invalid character it refuses).
_STRINGS_AND_COMMENTS = re.compile(
    r'"""(?:\\"""|\\(?!""")|[^"\\]|"(?!""))*+"""'
    r'|"(?:\\.|[^"\\\n\r])*+"'
    r"|#[^\n\r\ud800-\udfff]*+"
)


def _keep_strings(match: re.Match[str]) -> str:
    text = match.group()
    return "#" if text[0] == "#" else text


def without_comments(query: str) -> str:
    """`query` with each comment's text removed (its `#` and line end kept), at the regular
    expression engine's speed: graphql-core lexes a comment a character at a time in Python
    (a 16 K-character comment: ~7 ms of CPU). A comment runs to its line's end, so every
    token keeps its line and column; what parses of the result is the same document."""
    if "#" not in query:
        return query
    return _STRINGS_AND_COMMENTS.sub(_keep_strings, query)


def text_bytes(query: str) -> int:
    """What a document's text (a cache key, also the parsed source's body) costs."""
    return sys.getsizeof(query) + ENTRY_BYTES


def document_bytes(query: str, document: DocumentNode) -> int:
    """An upper bound of what a parsed document and its text keep alive: the text twice (the
    key, and the values of its comments and strings), and every token with its syntax tree."""
    tokens = 0
    token = document.loc.start_token if document.loc else None
    while token is not None:
        tokens += 1
        token = token.next
    return 2 * sys.getsizeof(query) + DOCUMENT_BYTES + TOKEN_BYTES * tokens


Key = TypeVar("Key", bound=Hashable)
Value = TypeVar("Value")


def _weight(entry: tuple[object, int]) -> int:
    return entry[1]


class ByteBoundedCache(Generic[Key, Value]):
    """A least-recently-used cache whose entries, each weighed when stored, add up to at most
    `max_bytes`."""

    def __init__(self, max_bytes: int) -> None:
        self._entries: LRUCache[Key, tuple[Value, int]] = LRUCache(
            maxsize=max_bytes, getsizeof=_weight
        )

    def get(self, key: Key) -> tuple[Value] | None:
        """The value stored under `key` (in a 1-tuple, as it may be None), or None."""
        entry = self._entries.get(key)
        return None if entry is None else (entry[0],)

    def put(self, key: Key, value: Value, weight: int) -> None:
        """Store a value that keeps `weight` bytes alive, evicting the least recently used;
        one heavier than the whole budget is not stored."""
        if weight <= self._entries.maxsize:
            self._entries[key] = (value, weight)

    @property
    def held_bytes(self) -> int:
        """The weight of what is stored now."""
        return int(self._entries.currsize)

    def __len__(self) -> int:
        return len(self._entries)
