"""The write token check: every mutation needs one of the configured tokens."""

from __future__ import annotations

import hmac
from collections.abc import Sequence


class WriteTokens:
    """The accepted write tokens; several at once so a token can be rotated without downtime."""

    def __init__(self, tokens: Sequence[str]) -> None:
        if not tokens or any(not token for token in tokens):
            raise ValueError("at least one non-empty write token is required")
        self._tokens = tuple(token.encode() for token in tokens)

    def accepts(self, presented: str | None) -> bool:
        """Whether `presented` is one of the tokens, compared in constant time."""
        if not presented:
            return False
        candidate = presented.encode()
        # Compare against every token, without stopping early, so timing tells nothing.
        matched = False
        for token in self._tokens:
            matched |= hmac.compare_digest(candidate, token)
        return matched


def token_from_headers(x_internal_token: str | None, authorization: str | None) -> str | None:
    """The token a request presents: `X-Internal-Token`, or `Authorization: Bearer …`."""
    if x_internal_token:
        return x_internal_token.strip()
    if authorization:
        scheme, _, credentials = authorization.strip().partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            return credentials.strip()
    return None
