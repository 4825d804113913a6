"""GraphQL documents that probe the size limits: padded to a length, or dense in tokens."""

from __future__ import annotations

import uuid


def padded_document(head: str, length: int) -> str:
    """`head`, then a comment with a fresh id, padded to exactly `length` characters."""
    text = f"{head} #{uuid.uuid4()}"
    return text + "x" * (length - len(text))


def dense_document(number: int) -> str:
    """A unique document of about 1,000 tokens and 5,000 characters (a variable's default
    list), which keeps about 0.4 MB alive once parsed."""
    values = " ".join(str(number + index) for index in range(1_000))
    return f"query($v: [Int] = [{values}]) {{ __typename }}"
