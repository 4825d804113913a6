"""Every GraphQL error leaves with an `extensions.code` from the contract, and nothing internal."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from graphql import GraphQLError

from resolvers.errors import ApiError, ErrorCode

logger = logging.getLogger(__name__)

INTERNAL_MESSAGE = "internal error; retry later"


def assign_codes(errors: Sequence[GraphQLError]) -> None:
    """Give each error its code in place: the service's own, BAD_USER_INPUT for a malformed
    document or argument, UNAVAILABLE (message masked, cause logged) for anything unexpected."""
    for error in errors:
        original = error.original_error
        if isinstance(original, ApiError):
            code = original.code
        elif error.path is None:
            # Raised before execution: syntax, validation, variable coercion, request limits.
            code = ErrorCode.BAD_USER_INPUT
        else:
            logger.error(
                "unexpected error in %s", ".".join(map(str, error.path)), exc_info=original
            )
            error.message = INTERNAL_MESSAGE
            code = ErrorCode.UNAVAILABLE
        error.extensions = {**(error.extensions or {}), "code": code.value}
