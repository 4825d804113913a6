"""Input rules and the write token check."""

from __future__ import annotations

import pytest

from resolvers import validation
from resolvers.auth import WriteTokens, token_from_headers
from resolvers.errors import ApiError, ErrorCode


@pytest.mark.parametrize("name", ["a", "A_b-c.d", "x" * 64, "Jörg", "名人", "٣"])
def test_valid_usernames(name: str) -> None:
    assert validation.username(name) == name


@pytest.mark.parametrize(
    "name", ["", "x" * 65, "a b", "a/b", "a\x00", "e\u0301", "emoji😀", "tab\t", "a@b"]
)
def test_invalid_usernames(name: str) -> None:
    with pytest.raises(ApiError) as raised:
        validation.username(name)
    assert raised.value.code is ErrorCode.BAD_USER_INPUT


def test_delta_bounds() -> None:
    assert validation.delta(-10, 10) == -10
    for bad in (0, 11, -11):
        with pytest.raises(ApiError):
            validation.delta(bad, 10)


def test_event_ids() -> None:
    assert validation.event_id(None) is None
    assert validation.event_id("match:1.kill-2_x") == "match:1.kill-2_x"
    for bad in ("", "a b", "~generated", "x" * 129):
        with pytest.raises(ApiError):
            validation.event_id(bad)


def test_tokens_accept_any_configured_one() -> None:
    tokens = WriteTokens(["old", "new"])
    assert tokens.accepts("old")
    assert tokens.accepts("new")
    assert not tokens.accepts("ol")
    assert not tokens.accepts("")
    assert not tokens.accepts(None)
    with pytest.raises(ValueError, match="token"):
        WriteTokens([])


def test_token_headers() -> None:
    assert token_from_headers("abc", None) == "abc"
    assert token_from_headers(None, "Bearer xyz") == "xyz"
    assert token_from_headers(None, "bearer  xyz ") == "xyz"
    assert token_from_headers(None, "Basic xyz") is None
    assert token_from_headers(None, None) is None
