"""The errors a client can see, each with the `extensions.code` the contract names, and how
the stores' and the batcher's failures map to them."""

from __future__ import annotations

import contextlib
import enum
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

from batcher import WriteRefused
from store.errors import EventIdReused, ScoreBeyondCap, ScoreOutOfRange, StoreUnavailable

logger = logging.getLogger(__name__)

T = TypeVar("T")


class ErrorCode(enum.Enum):
    """The contract's error codes."""

    BAD_USER_INPUT = "BAD_USER_INPUT"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    NOT_FOUND = "NOT_FOUND"
    UNAVAILABLE = "UNAVAILABLE"
    RATE_LIMITED = "RATE_LIMITED"
    FORBIDDEN = "FORBIDDEN"


class ApiError(Exception):
    """A request the service refuses; nothing was changed by it."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def bad_input(message: str) -> ApiError:
    """An invalid argument."""
    return ApiError(ErrorCode.BAD_USER_INPUT, message)


def unauthenticated() -> ApiError:
    """A mutation without a valid write token."""
    return ApiError(
        ErrorCode.UNAUTHENTICATED,
        "a valid write token is needed (header X-Internal-Token, or Authorization: Bearer)",
    )


def forbidden(message: str) -> ApiError:
    """A valid caller without the right to this operation (or a write on an archived board)."""
    return ApiError(ErrorCode.FORBIDDEN, message)


def unavailable(message: str) -> ApiError:
    """Storage down or the write buffer full: nothing was applied, retry later."""
    return ApiError(ErrorCode.UNAVAILABLE, message)


async def reading(operation: Callable[[], Awaitable[T]]) -> T:
    """Run a read of the frozen standings; the database failing is UNAVAILABLE."""
    try:
        return await operation()
    except StoreUnavailable as error:
        logger.warning("history unavailable: %s", error)
        raise unavailable("storage is unavailable, retry later") from None


@contextlib.contextmanager
def write_refusals() -> Iterator[None]:
    """A write's refusals by the batcher or the store, as the client's errors (nothing
    was written)."""
    try:
        yield
    except WriteRefused as error:
        raise unavailable(f"writes are refused for now ({error.reason}); retry later") from None
    except (ScoreOutOfRange, EventIdReused, ScoreBeyondCap) as error:
        raise bad_input(str(error)) from None
