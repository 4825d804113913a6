"""The token checks: every mutation needs a write token, admin operations an admin token."""

from __future__ import annotations

import enum
import hmac
from collections.abc import Sequence

from resolvers.errors import ApiError, ErrorCode


class Access(enum.Enum):
    """What the token a request presents allows."""

    NONE = "none"
    """No token, or an unknown one."""
    WRITE = "write"
    """A write token: mutations on scores."""
    ADMIN = "admin"
    """An admin token: admin operations, and writes too."""


def _matches(candidate: bytes, tokens: Sequence[bytes]) -> bool:
    # Compare against every token, without stopping early, so timing tells nothing.
    matched = False
    for token in tokens:
        matched |= hmac.compare_digest(candidate, token)
    return matched


class WriteTokens:
    """The accepted write and admin tokens; several of each at once, so a token can be
    rotated without downtime. No admin token: admin operations are refused (never open)."""

    def __init__(self, tokens: Sequence[str], admin: Sequence[str] = ()) -> None:
        if not tokens or any(not token for token in tokens):
            raise ValueError("at least one non-empty write token is required")
        if any(not token for token in admin):
            raise ValueError("admin tokens must not be empty")
        self._tokens = tuple(token.encode() for token in tokens)
        self._admin = tuple(token.encode() for token in admin)

    def __repr__(self) -> str:
        # Never the tokens themselves.
        return f"WriteTokens({len(self._tokens)} write, {len(self._admin)} admin)"

    @property
    def admin_enabled(self) -> bool:
        """Whether any admin token is configured."""
        return bool(self._admin)

    def accepts(self, presented: str | None) -> bool:
        """Whether `presented` may write (a write or an admin token), in constant time."""
        return self.access(presented) is not Access.NONE

    def access(self, presented: str | None) -> Access:
        """What `presented` allows, compared in constant time against every token."""
        if not presented:
            return Access.NONE
        candidate = presented.encode()
        # Both lists are always compared, so timing does not tell which kind matched.
        admin = _matches(candidate, self._admin)
        write = _matches(candidate, self._tokens)
        if admin:
            return Access.ADMIN
        return Access.WRITE if write else Access.NONE


def require_admin(access: Access, admin_enabled: bool) -> None:
    """Refuse an admin operation unless an admin token was presented: FORBIDDEN when none is
    configured or a write token was presented, UNAUTHENTICATED for no or an unknown token."""
    if not admin_enabled:
        raise ApiError(
            ErrorCode.FORBIDDEN,
            "admin operations are disabled: no admin token is configured (LEADERBOARD_ADMIN_TOKEN)",
        )
    if access is Access.WRITE:
        raise ApiError(
            ErrorCode.FORBIDDEN, "this operation needs an admin token; a write token is not enough"
        )
    if access is Access.NONE:
        raise ApiError(
            ErrorCode.UNAUTHENTICATED,
            "a valid admin token is needed (header X-Internal-Token, or Authorization: Bearer)",
        )


def token_from_headers(x_internal_token: str | None, authorization: str | None) -> str | None:
    """The token a request presents: `X-Internal-Token`, or `Authorization: Bearer …`."""
    if x_internal_token:
        return x_internal_token.strip()
    if authorization:
        scheme, _, credentials = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            return credentials.strip()
    return None
