"""Live rankings in Redis: a sorted set per board period, each operation one round trip.

Layout, per board and period (one hash tag, so a period's keys share a Cluster slot):

    {prefix}:{{board|period}}:ranking   sorted set, member = username, score = -total
    {prefix}:{{board|period}}:events    set of the client event ids applied
    {prefix}:{{board|period}}:loaded    marker: present = the ranking may be served
    {prefix}:{{board|period}}:rebuild   rebuild claim, value = the claimer's token

Scores are stored negated so that ascending member order is the leaderboard order
(score descending, ties by username ascending, as Redis orders equal scores by
member bytes). Applied increments are published as JSON on `{prefix}:changes:{board}`.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import timedelta
from importlib import resources
from itertools import islice
from typing import Any, TypeVar

import orjson
import redis.asyncio as redis_asyncio
from redis import exceptions as redis_errors
from redis.asyncio.client import Pipeline, PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript

from store.boards import Board, period_end
from store.errors import RankingNotLoaded, ScoreOutOfRange, StoreUnavailable
from store.models import (
    MAX_EXACT_SCORE,
    IncrementOutcome,
    RankedPlayer,
    ScoreChange,
    ScoreIncrement,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Errors that mean "Redis did not answer (usefully)": the caller may retry later.
_UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    redis_errors.ConnectionError,  # also refused, reset, authentication, still loading
    redis_errors.TimeoutError,
    redis_errors.ReadOnlyError,  # a replica after a failover
    redis_errors.OutOfMemoryError,
    redis_errors.ClusterDownError,
    redis_errors.TryAgainError,
)

_LOAD_CHUNK = 10_000
"""Members per ZADD / SADD while loading: big enough to be fast, small enough not to block."""
_LOAD_CHUNKS_PER_PIPELINE = 10
_LOAD_TEMP_TTL_MS = 3_600_000
"""Temporary keys of a load that died half-way disappear on their own."""
_MIN_EXPIRY = timedelta(hours=1)
"""A past period loaded again (to be read) stays at least this long."""

_MAX_CONNECTIONS = 128
_RESUBSCRIBE_MIN_SECONDS = 0.1
_RESUBSCRIBE_MAX_SECONDS = 5.0
_SUBSCRIPTION_IDLE_SECONDS = 30.0
"""After this long without a message the subscription is PINGed; no answer = reconnect."""

_LUA = resources.files(__package__ or "store").joinpath("lua")


def _lua(name: str) -> str:
    return _LUA.joinpath("common.lua").read_text("utf-8") + _LUA.joinpath(name).read_text("utf-8")


@dataclass(frozen=True, slots=True)
class _PeriodKeys:
    ranking: str
    events: str
    loaded: str
    rebuild: str


class RedisRankingStore:
    """`RankingStore` on Redis (7.0 or later): shared by every instance of the service."""

    def __init__(
        self,
        client: redis_asyncio.Redis,
        *,
        key_prefix: str,
        boards: Sequence[Board],
        retention: timedelta,
    ) -> None:
        self._client = client
        self._prefix = key_prefix
        self._boards = {board.id: board for board in boards}
        self._retention = retention
        self._closed = False
        self._increment = client.register_script(_lua("increment.lua"))
        self._top = client.register_script(_lua("top.lua"))
        self._player = client.register_script(_lua("player.lua"))
        self._neighborhood = client.register_script(_lua("neighborhood.lua"))
        self._player_count = client.register_script(_lua("player_count.lua"))
        self._load = client.register_script(_lua("load.lua"))
        self._release = client.register_script(_lua("release.lua"))

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        key_prefix: str,
        boards: Sequence[Board],
        retention: timedelta,
    ) -> RedisRankingStore:
        """A store on a new client for a `redis://` or `rediss://` URL (nothing connects yet)."""
        # A spike waits for a pooled connection (up to the socket timeout) instead of
        # failing at once when every connection is busy.
        pool = redis_asyncio.BlockingConnectionPool.from_url(
            url,
            max_connections=_MAX_CONNECTIONS,
            timeout=5.0,
            socket_timeout=5.0,
            socket_connect_timeout=5.0,
            socket_keepalive=True,
            # No automatic retries: a script re-sent after its reply was lost could apply
            # an increment twice. Callers get StoreUnavailable and retry themselves.
            retry=Retry(NoBackoff(), 0),
        )
        client = redis_asyncio.Redis.from_pool(pool)
        return cls(client, key_prefix=key_prefix, boards=boards, retention=retention)

    # Writes

    async def increment(self, increments: Sequence[ScoreIncrement]) -> list[IncrementOutcome]:
        """Apply increments in order, all or none, in one script call; publish each applied."""
        if not increments:
            return []
        periods: dict[tuple[str, str], int] = {}
        keys: list[str] = []
        args: list[str | int] = [0]
        for increment in increments:
            if abs(increment.delta) > MAX_EXACT_SCORE:
                raise ScoreOutOfRange(increment.username, increment.board)
            board_period = (increment.board, increment.period)
            if board_period not in periods:
                periods[board_period] = len(periods) + 1
                expire_at = self._expire_at_ms(increment.board, increment.period)
                period_keys = self._keys(increment.board, increment.period)
                keys += [period_keys.ranking, period_keys.events, period_keys.loaded]
                args += [
                    self._channel(increment.board),
                    increment.board,
                    increment.period,
                    expire_at,
                ]
        args[0] = len(periods)
        for increment in increments:
            args += [
                periods[(increment.board, increment.period)],
                increment.username,
                increment.delta,
                1 if increment.client_event_id else 0,
                increment.event_id,
            ]
        reply = await self._call(self._increment, keys, args)
        status = int(reply[0])
        if status == 1:
            board, period = list(periods)[int(reply[1]) - 1]
            raise RankingNotLoaded(board, period)
        if status == 2:
            failed = increments[int(reply[1]) - 1]
            raise ScoreOutOfRange(failed.username, failed.board)
        outcomes = []
        for index, increment in enumerate(increments):
            applied, score, rank, had_score, previous_score, previous_rank = reply[
                1 + 6 * index : 7 + 6 * index
            ]
            outcomes.append(
                IncrementOutcome(
                    increment=increment,
                    score=int(score),
                    rank=int(rank),
                    applied=bool(applied),
                    previous_score=int(previous_score) if had_score else None,
                    previous_rank=int(previous_rank) if had_score else None,
                )
            )
        return outcomes

    async def load(
        self,
        board: str,
        period: str,
        totals: Iterable[tuple[str, int]],
        client_event_ids: Iterable[str],
    ) -> None:
        """Replace the period's ranking and event ids, then mark it loaded, atomically.

        Writes temporary keys in pipelined chunks, then one script swaps them in.
        """
        expire_at = self._expire_at_ms(board, period)
        keys = self._keys(board, period)
        token = secrets.token_hex(8)
        temp_ranking = f"{keys.ranking}:load:{token}"
        temp_events = f"{keys.events}:load:{token}"

        def ranking_command(pipe: Pipeline, chunk: list[tuple[str, int]]) -> None:
            mapping: dict[str, int] = {}
            for username, total in chunk:
                if abs(total) > MAX_EXACT_SCORE:
                    raise ScoreOutOfRange(username, board)
                mapping[username] = -total
            pipe.zadd(temp_ranking, mapping)
            pipe.pexpire(temp_ranking, _LOAD_TEMP_TTL_MS)

        def events_command(pipe: Pipeline, chunk: list[str]) -> None:
            pipe.sadd(temp_events, *chunk)
            pipe.pexpire(temp_events, _LOAD_TEMP_TTL_MS)

        try:
            with _unavailable_on_failure():
                await self._write_chunks(totals, ranking_command)
                await self._write_chunks(client_event_ids, events_command)
                await self._load(
                    keys=[keys.ranking, keys.events, keys.loaded, temp_ranking, temp_events],
                    args=[expire_at],
                )
        except Exception:
            with suppress(Exception):
                await self._client.unlink(temp_ranking, temp_events)
            raise

    async def _write_chunks(
        self, items: Iterable[T], command: Callable[[Pipeline, list[T]], None]
    ) -> None:
        pipe = self._client.pipeline(transaction=False)
        queued = 0
        for chunk in _chunks(items, _LOAD_CHUNK):
            command(pipe, chunk)
            queued += 1
            if queued == _LOAD_CHUNKS_PER_PIPELINE:
                await pipe.execute()
                queued = 0
        if queued:
            await pipe.execute()

    # Reads

    async def top(self, board: str, period: str, limit: int, offset: int) -> list[RankedPlayer]:
        """Players ranked offset+1 .. offset+limit, best first."""
        if limit < 0 or offset < 0:
            raise ValueError("limit and offset must not be negative")
        keys = self._keys(board, period)
        reply = await self._call(self._top, [keys.ranking, keys.loaded], [limit, offset])
        return _ranked_players(board, period, reply)

    async def player(self, board: str, period: str, username: str) -> RankedPlayer | None:
        """One player's standing, or None without a score in the period."""
        keys = self._keys(board, period)
        reply = await self._call(self._player, [keys.ranking, keys.loaded], [username])
        _check_loaded(board, period, reply)
        if len(reply) == 1:
            return None
        return RankedPlayer(username=username, score=int(reply[1]), rank=int(reply[2]))

    async def neighborhood(
        self, board: str, period: str, username: str, radius: int
    ) -> list[RankedPlayer]:
        """The player and up to `radius` players directly above and below, best first."""
        if radius < 0:
            raise ValueError("radius must not be negative")
        keys = self._keys(board, period)
        reply = await self._call(
            self._neighborhood, [keys.ranking, keys.loaded], [username, radius]
        )
        return _ranked_players(board, period, reply)

    async def player_count(self, board: str, period: str) -> int:
        """How many players have a score in the period."""
        keys = self._keys(board, period)
        reply = await self._call(self._player_count, [keys.ranking, keys.loaded], [])
        _check_loaded(board, period, reply)
        return int(reply[1])

    async def totals(self, board: str, period: str) -> dict[str, int]:
        """Every player's total in the period, read with ZSCAN in chunks.

        One ZRANGE of a million players outlasts the socket timeout while redis-py
        parses it. ZSCAN returns every player present throughout the scan (a score
        changed meanwhile may be either value): good enough for reconciliation, which
        races with live increments anyway.
        """
        keys = self._keys(board, period)
        totals: dict[str, int] = {}
        with _unavailable_on_failure():
            if not await self._client.exists(keys.loaded):
                raise RankingNotLoaded(board, period)
            async for member, stored in self._client.zscan_iter(keys.ranking, count=_LOAD_CHUNK):
                totals[_text(member)] = _score(stored)
            # Lost during the scan: what was read may be partial.
            if not await self._client.exists(keys.loaded):
                raise RankingNotLoaded(board, period)
        return totals

    async def is_loaded(self, board: str, period: str) -> bool:
        """Whether the period's loaded marker is present."""
        with _unavailable_on_failure():
            return bool(await self._client.exists(self._keys(board, period).loaded))

    # Rebuild claims

    async def claim_rebuild(self, board: str, period: str, ttl_seconds: float) -> str | None:
        """SET NX PX a random token; the token, or None when another claim holds."""
        token = secrets.token_hex(16)
        with _unavailable_on_failure():
            won = await self._client.set(
                self._keys(board, period).rebuild,
                token,
                nx=True,
                px=max(1, round(ttl_seconds * 1000)),
            )
        return token if won else None

    async def release_rebuild(self, board: str, period: str, token: str) -> None:
        """Delete the claim only while it still holds `token` (compare-and-delete script)."""
        await self._call(self._release, [self._keys(board, period).rebuild], [token])

    # Live changes

    def changes(self, board: str) -> AsyncIterator[ScoreChange]:
        """Applied increments of the board from every instance, via pub/sub.

        Subscribes on the first `__anext__`; survives Redis restarts by resubscribing
        (changes published meanwhile are lost). Closing the iterator unsubscribes.
        """
        return self._changes(self._channel(board))

    async def _changes(self, channel: str) -> AsyncIterator[ScoreChange]:
        delay = _RESUBSCRIBE_MIN_SECONDS
        while not self._closed:
            pubsub: PubSub = self._client.pubsub()
            try:
                await pubsub.subscribe(channel)
                _redeliver_lost_cancellation()
                awaiting_pong = False
                while True:
                    message = await pubsub.get_message(timeout=_SUBSCRIPTION_IDLE_SECONDS)
                    _redeliver_lost_cancellation()
                    if message is None:
                        # A silent channel and a dead connection look alike: ask.
                        if awaiting_pong:
                            raise redis_errors.ConnectionError("subscription did not answer PING")
                        await pubsub.ping()
                        _redeliver_lost_cancellation()
                        awaiting_pong = True
                        continue
                    awaiting_pong = False
                    if message["type"] == "subscribe":
                        delay = _RESUBSCRIBE_MIN_SECONDS
                    elif message["type"] == "message":
                        for change in _decode_changes(message["data"]):
                            yield change
            except _UNAVAILABLE_ERRORS as error:
                if self._closed:
                    return
                logger.warning(
                    "subscription to %s lost (%s); resubscribing in %.1f s", channel, error, delay
                )
            finally:
                with suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py leaves it bare
            await asyncio.sleep(delay)
            delay = min(delay * 2, _RESUBSCRIBE_MAX_SECONDS)

    # Connection

    async def ping(self) -> None:
        """Raise `StoreUnavailable` unless Redis answers PING."""
        with _unavailable_on_failure():
            await self._client.ping()

    async def close(self) -> None:
        """Close the client's connections; open change iterators end at their next error."""
        self._closed = True
        await self._client.aclose()

    # Helpers

    def _keys(self, board: str, period: str) -> _PeriodKeys:
        tag = f"{self._prefix}:{{{board}|{period}}}"
        return _PeriodKeys(
            ranking=f"{tag}:ranking",
            events=f"{tag}:events",
            loaded=f"{tag}:loaded",
            rebuild=f"{tag}:rebuild",
        )

    def _channel(self, board: str) -> str:
        return f"{self._prefix}:changes:{board}"

    def _expire_at_ms(self, board_id: str, period: str) -> int:
        """When a period's keys expire (Unix ms), 0 for never: `retention` after it ends."""
        board = self._boards.get(board_id)
        if board is None:
            raise ValueError(f"unknown board {board_id!r}")
        if not board.is_valid_period(period):
            raise ValueError(f"{period!r} is not a period of board {board_id!r}")
        end = period_end(board.reset, period)
        if end is None:
            return 0
        # In milliseconds: a datetime past year 9999 overflows.
        end_ms = int(end.timestamp() * 1000) + int(self._retention.total_seconds() * 1000)
        return max(end_ms, int((time.time() + _MIN_EXPIRY.total_seconds()) * 1000))

    async def _call(
        self, script: AsyncScript, keys: Sequence[str], args: Sequence[str | int]
    ) -> Any:
        with _unavailable_on_failure():
            return await script(keys=keys, args=args)


@contextmanager
def _unavailable_on_failure() -> Iterator[None]:
    try:
        yield
    except _UNAVAILABLE_ERRORS as error:
        raise StoreUnavailable(f"Redis is unavailable: {error}") from error
    _redeliver_lost_cancellation()


def _redeliver_lost_cancellation() -> None:
    """Raise CancelledError when the current task was cancelled but is still running.

    redis-py sends with `asyncio.wait_for`, which on Python 3.11 swallows a cancellation
    that arrives just as the send completes: the task would carry on as if never
    cancelled, and whoever awaits it (a shutdown) would wait for ever.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def _check_loaded(board: str, period: str, reply: list[Any]) -> None:
    if int(reply[0]) == 0:
        raise RankingNotLoaded(board, period)


def _ranked_players(board: str, period: str, reply: list[Any]) -> list[RankedPlayer]:
    _check_loaded(board, period, reply)
    return [
        RankedPlayer(username=_text(reply[at]), score=int(reply[at + 1]), rank=int(reply[at + 2]))
        for at in range(1, len(reply), 3)
    ]


def _text(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


def _score(stored: float) -> int:
    # Exact: every stored score is an integer within +-(2^53 - 1).
    return -int(stored)


def _chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _decode_changes(data: bytes | str) -> list[ScoreChange]:
    """The changes of one message: an array (one script call) or a single object."""
    try:
        decoded = orjson.loads(data)
        items = decoded if isinstance(decoded, list) else [decoded]
        return [
            ScoreChange(
                board=str(fields["board"]),
                period=str(fields["period"]),
                username=str(fields["username"]),
                previous_score=_optional_int(fields["previous_score"]),
                score=int(fields["score"]),
                previous_rank=_optional_int(fields["previous_rank"]),
                rank=int(fields["rank"]),
            )
            for fields in items
        ]
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        logger.warning("ignoring a malformed change message: %r", data)
        return []


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)
