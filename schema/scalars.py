"""The `Long` scalar: integers exact in a JSON number (|n| <= 2^53 - 1)."""

from __future__ import annotations

from typing import Any, NewType

import strawberry
from graphql import IntValueNode, ValueNode

from store.models import MAX_EXACT_SCORE

Long = NewType("Long", int)


def _checked(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise ValueError("Long must be an integer")
    if abs(value) > MAX_EXACT_SCORE:
        raise ValueError("Long must be within ±(2^53 - 1)")
    return int(value)


def _parse_literal(node: ValueNode, _variables: dict[str, Any] | None = None) -> int:
    if not isinstance(node, IntValueNode):
        raise ValueError("Long must be an integer")
    return _checked(int(node.value))


LONG = strawberry.scalar(
    name="Long",
    description=(
        "An integer score, serialised as a JSON number. Exact for every value with\n"
        "absolute value up to 2^53 - 1; anything outside that range is rejected."
    ),
    serialize=_checked,
    parse_value=_checked,
    parse_literal=_parse_literal,
)
