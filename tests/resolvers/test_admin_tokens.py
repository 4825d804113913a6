"""The token checks: write and admin tokens, and the admin scope's answers."""

from __future__ import annotations

import pytest

from resolvers.auth import Access, WriteTokens, require_admin
from resolvers.errors import ApiError, ErrorCode
from server.settings import Settings

pytestmark = pytest.mark.unit


def test_each_kind_of_token_is_recognised() -> None:
    tokens = WriteTokens(["w1", "w2"], admin=["a1", "a2"])
    assert [tokens.access(token) for token in ("w1", "w2", "a1", "a2")] == [
        Access.WRITE,
        Access.WRITE,
        Access.ADMIN,
        Access.ADMIN,
    ]
    for presented in (None, "", "w", "a1 ", "A1", "a1a1"):
        assert tokens.access(presented) is Access.NONE
    assert tokens.accepts("a1")
    assert tokens.accepts("w1")
    assert not tokens.accepts("x")
    assert tokens.admin_enabled
    assert not WriteTokens(["w1"]).admin_enabled


def test_tokens_never_show_in_their_repr() -> None:
    text = repr(WriteTokens(["write-secret"], admin=["admin-secret"]))
    assert "secret" not in text


def test_empty_admin_tokens_are_refused() -> None:
    with pytest.raises(ValueError, match="admin tokens"):
        WriteTokens(["w"], admin=[""])


@pytest.mark.parametrize(
    ("access", "enabled", "code"),
    [
        (Access.NONE, True, ErrorCode.UNAUTHENTICATED),
        (Access.WRITE, True, ErrorCode.FORBIDDEN),
        (Access.NONE, False, ErrorCode.FORBIDDEN),
        (Access.WRITE, False, ErrorCode.FORBIDDEN),
        (Access.ADMIN, False, ErrorCode.FORBIDDEN),
    ],
)
def test_the_admin_scope_answers_as_the_contract_says(
    access: Access, enabled: bool, code: ErrorCode
) -> None:
    with pytest.raises(ApiError) as refused:
        require_admin(access, enabled)
    assert refused.value.code is code


def test_an_admin_token_passes() -> None:
    require_admin(Access.ADMIN, True)


def test_admin_tokens_are_a_comma_list_and_never_printed() -> None:
    settings = Settings(_env_file=None, admin_token=" first , second ,")
    assert settings.admin_tokens == ("first", "second")
    assert "first" not in repr(settings)
    assert Settings(_env_file=None).admin_tokens == ()
