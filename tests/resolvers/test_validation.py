"""Input rules and the write token check."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from resolvers import validation
from resolvers.auth import WriteTokens, token_from_headers
from resolvers.errors import ApiError, ErrorCode

pytestmark = pytest.mark.unit


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


def _username_by_the_rule(value: str) -> str:
    """The username rule checked character by character, as the contract states it."""
    if not 1 <= len(value) <= 64:
        return "BAD_USER_INPUT: username must be 1..64 characters long"
    for character in value:
        if not (character.isalpha() or character.isdecimal() or character in "_-."):
            return (
                "BAD_USER_INPUT: username may hold only letters, digits, '_', '-' and '.', "
                f"not {character!r}"
            )
    if unicodedata.normalize("NFC", value) != value:
        return "BAD_USER_INPUT: username must be in Unicode normal form C"
    return value


def _username_outcome(value: str) -> str:
    """What `validation.username` answers: the name, or the error's code and message."""
    try:
        return validation.username(value)
    except ApiError as error:
        return f"{error.code.value}: {error.message}"


@given(
    st.one_of(
        st.text(alphabet="aZ09_-. \n\t/@é\u0301²٣", max_size=70),
        st.text(max_size=70),
    )
)
@example("x" * 64)
@example("x" * 65)
@example("x" * 64 + "\n")
@example("a\n")
@example("...")
@example("²")
@example("")
def test_usernames_follow_the_rule_exactly(name: str) -> None:
    # The ASCII shortcut must accept exactly what the full check accepts, and leave every
    # refusal (and its message) to it.
    assert _username_outcome(name) == _username_by_the_rule(name)


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
