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
import dataclasses
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
from redis.asyncio.cluster import ClusterPipeline, ClusterPubSub, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from sortedcontainers import SortedList

from store.boards import Board, period_end
from store.coalescing import CoalescedCalls
from store.errors import (
    PartiallyApplied,
    RankingNotLoaded,
    ScoreOutOfRange,
    StoreError,
    StoreUnavailable,
)
from store.models import (
    MAX_EXACT_SCORE,
    IncrementOutcome,
    RankedPlayer,
    ScoreChange,
    ScoreIncrement,
)
from store.observer import StoreObserver

logger = logging.getLogger(__name__)

T = TypeVar("T")
_AnyPipeline = Pipeline | ClusterPipeline

# Errors that mean "Redis did not answer (usefully)": the caller may retry later.
_UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    redis_errors.ConnectionError,  # also refused, reset, authentication, still loading
    redis_errors.TimeoutError,
    redis_errors.ReadOnlyError,  # a replica after a failover
    redis_errors.OutOfMemoryError,
    redis_errors.ClusterDownError,
    redis_errors.TryAgainError,
)

# A subscription also ends on an error reply (MOVED while a cluster reshards): resubscribe.
_SUBSCRIPTION_ERRORS: tuple[type[Exception], ...] = (
    *_UNAVAILABLE_ERRORS,
    redis_errors.ResponseError,
)

_LOAD_CHUNK = 10_000
"""Members per ZADD / SADD while loading: big enough to be fast, small enough not to block."""
_LOAD_CHUNKS_PER_PIPELINE = 10
_LOAD_TEMP_TTL_MS = 3_600_000
"""Temporary keys of a load that died half-way disappear on their own."""
_MIN_EXPIRY = timedelta(hours=1)
"""A past period loaded again (to be read) stays at least this long."""

_MAX_CONNECTIONS = 128
_COALESCED_MAX_INCREMENTS = 256
"""Most increments of concurrent calls merged into one script call (a caller's own batch
is never split): enough to absorb a burst, short enough not to hold Redis for long."""
_COALESCED_MAX_IN_FLIGHT = 4
"""Merged script calls out at once; more concurrent calls wait to join the next one."""
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
        client: redis_asyncio.Redis | RedisCluster,
        *,
        key_prefix: str,
        boards: Sequence[Board],
        retention: timedelta,
        observer: StoreObserver | None = None,
    ) -> None:
        self._client = client
        self._observer = observer
        self._cluster = isinstance(client, RedisCluster)
        self._in_flight = asyncio.Semaphore(_MAX_CONNECTIONS) if self._cluster else None
        self._prefix = key_prefix
        self._boards = {board.id: board for board in boards}
        self._retention = retention
        self._closed = False
        self._script_names: dict[str, str] = {}
        self._increment = self._register("increment")
        self._top = self._register("top")
        self._player = self._register("player")
        self._neighborhood = self._register("neighborhood")
        self._player_count = self._register("player_count")
        self._load = self._register("load")
        self._release = self._register("release")
        self._shard_around = self._register("shard_around")
        # Concurrent increments of unsharded boards on one Redis share script calls.
        self._coalesced_increments: CoalescedCalls[ScoreIncrement, IncrementOutcome] = (
            CoalescedCalls(
                self._increment_now,
                max_items=_COALESCED_MAX_INCREMENTS,
                max_in_flight=_COALESCED_MAX_IN_FLIGHT,
                # The script refused the whole call before writing anything.
                retry_alone=(RankingNotLoaded, ScoreOutOfRange),
                abandoned=lambda: StoreUnavailable(
                    "the Redis call was abandoned (shutting down); whether it applied is unknown"
                ),
            )
        )

    def _register(self, name: str) -> AsyncScript:
        script = self._client.register_script(_lua(f"{name}.lua"))
        self._script_names[script.sha] = name
        return script

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        key_prefix: str,
        boards: Sequence[Board],
        retention: timedelta,
        cluster: bool = False,
        observer: StoreObserver | None = None,
    ) -> RedisRankingStore:
        """A store on a new client for a `redis://` or `rediss://` URL (nothing connects yet).

        With `cluster`, the URL names any one node of a Redis Cluster (the seed); the
        client discovers the others and follows slot moves and failovers.
        """
        if cluster:
            cluster_client = RedisCluster.from_url(
                url,
                max_connections=_MAX_CONNECTIONS,
                socket_timeout=5.0,
                socket_connect_timeout=5.0,
                socket_keepalive=True,
                # Redirections (MOVED, ASK) are followed: the command did not run. A lost
                # connection is not retried (a re-sent script could apply twice), but the
                # slot map is refreshed, so the next call finds a promoted replica.
                retry=Retry(NoBackoff(), 0),
            )
            return cls(
                cluster_client,
                key_prefix=key_prefix,
                boards=boards,
                retention=retention,
                observer=observer,
            )
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
        return cls(
            client, key_prefix=key_prefix, boards=boards, retention=retention, observer=observer
        )

    # Writes

    async def increment(self, increments: Sequence[ScoreIncrement]) -> list[IncrementOutcome]:
        """Apply increments in order, all or none, in one script call; publish each applied.

        Calls made at the same moment share a script call (store/coalescing.py); each
        gets exactly what its own call would have. Sharded boards and Redis Cluster take
        the spread path (see `_increment_spread`).
        """
        if not increments:
            return []
        for increment in increments:
            if abs(increment.delta) > MAX_EXACT_SCORE:
                raise ScoreOutOfRange(increment.username, increment.board)
        if self._cluster or any(self._board(i.board).shards > 1 for i in increments):
            return await self._increment_spread(increments)
        return await self._coalesced_increments(increments)

    async def _increment_now(
        self, increments: Sequence[ScoreIncrement], *, publish: bool = True, dry_run: bool = False
    ) -> list[IncrementOutcome]:
        """One run of increment.lua: its outcomes, or its refusal raised."""
        keys, args, groups = self._increment_call(increments, publish=publish, dry_run=dry_run)
        reply = await self._call(self._increment, keys, args)
        return _increment_outcomes(increments, groups, reply)

    def _increment_call(
        self, increments: Sequence[ScoreIncrement], *, publish: bool, dry_run: bool
    ) -> tuple[list[str], list[str | int | bytes], list[tuple[str, str]]]:
        """KEYS and ARGV of increment.lua, and the board periods in the script's order."""
        groups: dict[tuple[str, str, int], int] = {}
        group_of: list[int] = []
        keys: list[str] = []
        args: list[str | int | bytes] = [0, 1 if dry_run else 0]
        for increment in increments:
            shard = self._board(increment.board).shard_of(increment.username)
            group = (increment.board, increment.period, shard)
            if group not in groups:
                groups[group] = len(groups) + 1
                period_keys = self._keys(increment.board, increment.period, shard)
                keys += [period_keys.ranking, period_keys.events, period_keys.loaded]
                args += [
                    self._channel(increment.board) if publish else "",
                    increment.board,
                    increment.period,
                    self._expire_at_ms(increment.board, increment.period),
                ]
            group_of.append(groups[group])
        args[0] = len(groups)
        # One JSON argument for all the increments, not five per increment: redis-py packs
        # every argument in Python (it was a fifth of the service's CPU under batched
        # ingest), orjson and the script's cjson handle one array in C.
        args.append(
            orjson.dumps(
                [
                    [
                        group_number,
                        increment.username,
                        increment.delta,
                        1 if increment.client_event_id else 0,
                        increment.event_id,
                    ]
                    for increment, group_number in zip(increments, group_of, strict=True)
                ]
            )
        )
        return keys, args, [(board, period) for board, period, _ in groups]

    async def _increment_spread(
        self, increments: Sequence[ScoreIncrement]
    ) -> list[IncrementOutcome]:
        """Increments touching sharded boards, or any on a Redis Cluster.

        On one Redis every shard's keys fit one script call, as all or none as ever. On
        a cluster each slot (board, period, shard) is its own call: with several slots,
        a dry run of every call comes first, so a batch that would fail (not loaded, out
        of range) changes nothing; a node failing between the two raises
        `PartiallyApplied` with what was applied. Sharded ranks are then summed over the
        shards in one parallel round, and the changes published from here.
        """
        if not self._cluster:
            outcomes = await self._increment_now(increments, publish=False)
        else:
            outcomes = await self._increment_per_slot(increments)
        outcomes = await self._with_board_ranks(outcomes)
        await self._publish(outcomes)
        return outcomes

    async def _increment_per_slot(
        self, increments: Sequence[ScoreIncrement]
    ) -> list[IncrementOutcome]:
        by_slot: dict[tuple[str, str, int], list[int]] = {}
        for index, increment in enumerate(increments):
            shard = self._board(increment.board).shard_of(increment.username)
            by_slot.setdefault((increment.board, increment.period, shard), []).append(index)
        slots = [[increments[index] for index in indexes] for indexes in by_slot.values()]

        if len(slots) > 1:
            checks = await asyncio.gather(
                *(self._increment_now(batch, publish=False, dry_run=True) for batch in slots),
                return_exceptions=True,
            )
            # The first refusal in batch order, as one script call would name it.
            for check in checks:
                if isinstance(check, BaseException):
                    raise check
        results = await asyncio.gather(
            *(self._increment_now(batch, publish=False) for batch in slots),
            return_exceptions=True,
        )
        applied: dict[int, IncrementOutcome] = {}
        failure: BaseException | None = None
        for indexes, result in zip(by_slot.values(), results, strict=True):
            if isinstance(result, BaseException):
                failure = failure or result
            else:
                applied.update(zip(indexes, result, strict=True))
        if failure is not None:
            if not applied or not isinstance(failure, StoreError):
                raise failure
            raise PartiallyApplied([applied[index] for index in sorted(applied)], failure)
        return [applied[index] for index in range(len(increments))]

    async def _with_board_ranks(self, outcomes: list[IncrementOutcome]) -> list[IncrementOutcome]:
        """Outcomes of sharded boards with board-wide ranks (a script sees one shard).

        The counts of higher scores are read after the whole batch; each increment's
        rank at its turn in the batch is derived from them by replaying the batch's own
        players (the only ones whose scores changed within the call).
        """
        by_period: dict[tuple[str, str], list[int]] = {}
        for index, outcome in enumerate(outcomes):
            increment = outcome.increment
            if self._board(increment.board).shards > 1:
                by_period.setdefault((increment.board, increment.period), []).append(index)
        if not by_period:
            return outcomes
        counts = await asyncio.gather(
            *(
                self._higher_counts(board, period, _scores_of(outcomes[i] for i in indexes))
                for (board, period), indexes in by_period.items()
            )
        )
        ranked = list(outcomes)
        for indexes, higher in zip(by_period.values(), counts, strict=True):
            for index, outcome in zip(
                indexes, _replay_ranks([outcomes[i] for i in indexes], higher), strict=True
            ):
                ranked[index] = outcome
        return ranked

    async def _higher_counts(self, board: str, period: str, scores: list[int]) -> dict[int, int]:
        """For each score, how many players of the period have a strictly higher one."""
        shard_keys = self._all_shard_keys(board, period)

        def commands(pipe: _AnyPipeline) -> None:
            for keys in shard_keys:
                pipe.exists(keys.loaded)
                for score in scores:
                    pipe.zcount(keys.ranking, "-inf", f"({-score}")

        replies = await self._pipelined(commands)
        totals = dict.fromkeys(scores, 0)
        step = 1 + len(scores)
        for at in range(0, len(replies), step):
            if not replies[at]:
                raise RankingNotLoaded(board, period)
            for score, count in zip(scores, replies[at + 1 : at + step], strict=True):
                totals[score] += int(count)
        return totals

    async def _publish(self, outcomes: list[IncrementOutcome]) -> None:
        """Publish applied changes, one message per board (sharded pub/sub on a cluster).

        A failed publish is logged, not raised: the increments are applied, and live
        subscribers resynchronise from reads anyway.
        """
        messages: dict[str, list[dict[str, Any]]] = {}
        for outcome in outcomes:
            if not outcome.applied:
                continue
            increment = outcome.increment
            messages.setdefault(increment.board, []).append(
                {
                    "board": increment.board,
                    "period": increment.period,
                    "username": increment.username,
                    "previous_score": outcome.previous_score,
                    "score": outcome.score,
                    "previous_rank": outcome.previous_rank,
                    "rank": outcome.rank,
                }
            )
        for board, changes in messages.items():
            try:
                with _unavailable_on_failure():
                    data = orjson.dumps(changes)
                    if self._cluster:
                        await self._client.spublish(self._channel(board), data)
                    else:
                        await self._client.publish(self._channel(board), data)
            except StoreUnavailable as error:
                logger.warning("could not publish %d changes of %s: %s", len(changes), board, error)

    async def load(
        self,
        board: str,
        period: str,
        totals: Iterable[tuple[str, int]],
        client_events: Iterable[tuple[str, str]],
    ) -> None:
        """Replace the period's ranking and event ids, then mark it loaded, atomically.

        Writes temporary keys in pipelined chunks, then one script swaps them in. A
        sharded board is loaded shard by shard, each atomically.
        """
        shards = self._board(board).shards
        if shards == 1:
            event_ids = (event_id for _, event_id in client_events)
            await self._load_shard(board, period, 0, totals, event_ids)
            return
        shard_totals: list[list[tuple[str, int]]] = [[] for _ in range(shards)]
        shard_events: list[list[str]] = [[] for _ in range(shards)]
        shard_of = self._board(board).shard_of
        for username, total in totals:
            shard_totals[shard_of(username)].append((username, total))
        for username, event_id in client_events:
            shard_events[shard_of(username)].append(event_id)
        await asyncio.gather(
            *(
                self._load_shard(board, period, shard, shard_totals[shard], shard_events[shard])
                for shard in range(shards)
            )
        )

    async def _load_shard(
        self,
        board: str,
        period: str,
        shard: int,
        totals: Iterable[tuple[str, int]],
        event_ids: Iterable[str],
    ) -> None:
        expire_at = self._expire_at_ms(board, period)
        keys = self._keys(board, period, shard)
        token = secrets.token_hex(8)
        temp_ranking = f"{keys.ranking}:load:{token}"
        temp_events = f"{keys.events}:load:{token}"

        def ranking_command(pipe: _AnyPipeline, chunk: list[tuple[str, int]]) -> None:
            mapping: dict[str, int] = {}
            for username, total in chunk:
                if abs(total) > MAX_EXACT_SCORE:
                    raise ScoreOutOfRange(username, board)
                mapping[username] = -total
            pipe.zadd(temp_ranking, mapping)
            pipe.pexpire(temp_ranking, _LOAD_TEMP_TTL_MS)

        def events_command(pipe: _AnyPipeline, chunk: list[str]) -> None:
            pipe.sadd(temp_events, *chunk)
            pipe.pexpire(temp_events, _LOAD_TEMP_TTL_MS)

        try:
            with _unavailable_on_failure():
                await self._write_chunks(totals, ranking_command)
                await self._write_chunks(event_ids, events_command)
                await self._load(
                    keys=[keys.ranking, keys.events, keys.loaded, temp_ranking, temp_events],
                    args=[expire_at],
                )
        except Exception:
            with suppress(Exception):
                await self._client.unlink(temp_ranking, temp_events)
            raise

    async def _write_chunks(
        self, items: Iterable[T], command: Callable[[_AnyPipeline, list[T]], None]
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
        if self._board(board).shards > 1:
            return await self._sharded_top(board, period, limit, offset)
        keys = self._keys(board, period)
        reply = await self._call(self._top, [keys.ranking, keys.loaded], [limit, offset])
        return _ranked_players(board, period, reply)

    async def player(self, board: str, period: str, username: str) -> RankedPlayer | None:
        """One player's standing, or None without a score in the period."""
        config = self._board(board)
        keys = self._keys(board, period, config.shard_of(username))
        reply = await self._call(self._player, [keys.ranking, keys.loaded], [username])
        _check_loaded(board, period, reply)
        if len(reply) == 1:
            return None
        score = int(reply[1])
        if config.shards == 1:
            return RankedPlayer(username=username, score=score, rank=int(reply[2]))
        higher = await self._higher_counts(board, period, [score])
        return RankedPlayer(username=username, score=score, rank=1 + higher[score])

    async def neighborhood(
        self, board: str, period: str, username: str, radius: int
    ) -> list[RankedPlayer]:
        """The player and up to `radius` players directly above and below, best first."""
        if radius < 0:
            raise ValueError("radius must not be negative")
        if self._board(board).shards > 1:
            return await self._sharded_neighborhood(board, period, username, radius)
        keys = self._keys(board, period)
        reply = await self._call(
            self._neighborhood, [keys.ranking, keys.loaded], [username, radius]
        )
        return _ranked_players(board, period, reply)

    async def player_count(self, board: str, period: str) -> int:
        """How many players have a score in the period."""
        shard_keys = self._all_shard_keys(board, period)
        if len(shard_keys) == 1:
            keys = shard_keys[0]
            reply = await self._call(self._player_count, [keys.ranking, keys.loaded], [])
            _check_loaded(board, period, reply)
            return int(reply[1])

        def commands(pipe: _AnyPipeline) -> None:
            for keys in shard_keys:
                pipe.exists(keys.loaded)
                pipe.zcard(keys.ranking)

        replies = await self._pipelined(commands)
        if not all(replies[0::2]):
            raise RankingNotLoaded(board, period)
        return sum(int(count) for count in replies[1::2])

    async def totals(self, board: str, period: str) -> dict[str, int]:
        """Every player's total in the period, read with ZSCAN in chunks.

        One ZRANGE of a million players outlasts the socket timeout while redis-py
        parses it. ZSCAN returns every player present throughout the scan (a score
        changed meanwhile may be either value): good enough for reconciliation, which
        races with live increments anyway.
        """
        totals: dict[str, int] = {}
        with _unavailable_on_failure():
            for keys in self._all_shard_keys(board, period):
                if not await self._client.exists(keys.loaded):
                    raise RankingNotLoaded(board, period)
                async for member, stored in self._client.zscan_iter(
                    keys.ranking, count=_LOAD_CHUNK
                ):
                    totals[_text(member)] = _score(stored)
                # Lost during the scan: what was read may be partial.
                if not await self._client.exists(keys.loaded):
                    raise RankingNotLoaded(board, period)
        return totals

    async def is_loaded(self, board: str, period: str) -> bool:
        """Whether the period's loaded marker is present (every shard's, when sharded).

        A sharded period with only some shards loaded (one node lost its data) has the
        others' markers removed too: writes then wait for the rebuild instead of landing
        in shards the rebuild is about to replace.
        """
        shard_keys = self._all_shard_keys(board, period)
        if len(shard_keys) == 1:
            with _unavailable_on_failure():
                return bool(await self._client.exists(shard_keys[0].loaded))

        def exists(pipe: _AnyPipeline) -> None:
            for keys in shard_keys:
                pipe.exists(keys.loaded)

        def unload(pipe: _AnyPipeline) -> None:
            for keys in shard_keys:
                pipe.delete(keys.loaded)

        present = await self._pipelined(exists)
        if all(present):
            return True
        if any(present):
            await self._pipelined(unload)
        return False

    async def _sharded_top(
        self, board: str, period: str, limit: int, offset: int
    ) -> list[RankedPlayer]:
        """Each shard's first offset+limit players, merged: one parallel round.

        Every player above one of the page is in its own shard's first offset+limit, so
        positions (and ranks) in the merge are exact.
        """
        if limit == 0:
            await self.player_count(board, period)  # still refuses an unloaded period
            return []
        shard_keys = self._all_shard_keys(board, period)

        def commands(pipe: _AnyPipeline) -> None:
            for keys in shard_keys:
                pipe.exists(keys.loaded)
                pipe.zrange(keys.ranking, 0, offset + limit - 1, withscores=True)

        replies = await self._pipelined(commands)
        if not all(replies[0::2]):
            raise RankingNotLoaded(board, period)
        merged = [
            (_text(member), _score(stored))
            for entries in replies[1::2]
            for member, stored in entries
        ]
        merged.sort(key=_order)
        return _rank_by_position(merged, offset, limit, first_rank=None)

    async def _sharded_neighborhood(
        self, board: str, period: str, username: str, radius: int
    ) -> list[RankedPlayer]:
        """The player's score from its shard, then each shard's players around that place
        (and how many come before it there), merged: two parallel rounds, a third only
        when the first player shown ties with the one above it."""
        config = self._board(board)
        keys = self._keys(board, period, config.shard_of(username))
        reply = await self._call(self._player, [keys.ranking, keys.loaded], [username])
        _check_loaded(board, period, reply)
        if len(reply) == 1:
            return []
        score = int(reply[1])
        # One extra player above, to tell whether the first one shown ties with it.
        replies = await self._fan_out(
            self._shard_around,
            [
                ([shard.ranking, shard.loaded], [score, username, radius + 1, radius])
                for shard in self._all_shard_keys(board, period)
            ],
        )
        position = 0
        before: list[tuple[str, int]] = []
        after: list[tuple[str, int]] = []
        for shard_reply in replies:
            _check_loaded(board, period, shard_reply)
            position += int(shard_reply[1])
            count_before = int(shard_reply[2])
            entries = [
                (_text(shard_reply[at]), int(shard_reply[at + 1]))
                for at in range(3, len(shard_reply), 2)
            ]
            before += entries[:count_before]
            after += entries[count_before:]
        before.sort(key=_order)
        after.sort(key=_order)
        shown_before = before[max(0, len(before) - radius) :] if radius else []
        window = [*shown_before, (username, score), *after[:radius]]
        first_position = position - len(shown_before)
        first_rank = first_position + 1
        if len(before) > len(shown_before) and before[-len(shown_before) - 1][1] == window[0][1]:
            first_score = window[0][1]
            first_rank = 1 + (await self._higher_counts(board, period, [first_score]))[first_score]
        return _rank_by_position(
            window, 0, len(window), first_rank=first_rank, start=first_position
        )

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
                await self._subscribe(pubsub, channel)
                _redeliver_lost_cancellation()
                awaiting_pong = False
                while True:
                    message = await self._next_message(pubsub)
                    _redeliver_lost_cancellation()
                    if message is None:
                        # A silent channel and a dead connection look alike: ask.
                        if awaiting_pong:
                            raise redis_errors.ConnectionError("subscription did not answer PING")
                        await self._probe(pubsub, channel)
                        _redeliver_lost_cancellation()
                        awaiting_pong = True
                        continue
                    awaiting_pong = False
                    kind = _text(message["type"])
                    if kind in ("subscribe", "ssubscribe"):
                        delay = _RESUBSCRIBE_MIN_SECONDS
                    elif kind in ("message", "smessage"):
                        for change in _decode_changes(message["data"]):
                            yield change
                    elif kind == "sunsubscribe":
                        # The slot moved to another node (resharding, failover).
                        raise redis_errors.ConnectionError("the channel's slot moved")
            except _SUBSCRIPTION_ERRORS as error:
                if self._closed:
                    return
                logger.warning(
                    "subscription to %s lost (%s); resubscribing in %.1f s", channel, error, delay
                )
                if isinstance(self._client, RedisCluster):
                    # Find the channel's node anew: its master may have been replaced.
                    with suppress(*_SUBSCRIPTION_ERRORS, redis_errors.RedisClusterException):
                        await self._client.nodes_manager.initialize()
            finally:
                with suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py leaves it bare
            await asyncio.sleep(delay)
            delay = min(delay * 2, _RESUBSCRIBE_MAX_SECONDS)

    async def _subscribe(self, pubsub: PubSub, channel: str) -> None:
        """SUBSCRIBE, or on a cluster SSUBSCRIBE (sharded pub/sub: only the channel's node)."""
        if isinstance(pubsub, ClusterPubSub):
            await pubsub.ssubscribe(channel)
        else:
            await pubsub.subscribe(channel)

    async def _next_message(self, pubsub: PubSub) -> dict[str, Any] | None:
        if isinstance(pubsub, ClusterPubSub):
            message = await pubsub.get_sharded_message(timeout=_SUBSCRIPTION_IDLE_SECONDS)
        else:
            message = await pubsub.get_message(timeout=_SUBSCRIPTION_IDLE_SECONDS)
        return message

    async def _probe(self, pubsub: PubSub, channel: str) -> None:
        """Make the subscription's connection answer something."""
        if isinstance(pubsub, ClusterPubSub):
            # SSUBSCRIBE again: answered on the very connection the messages come by.
            await pubsub.ssubscribe(channel)
        else:
            await pubsub.ping()

    # Connection

    async def ping(self) -> None:
        """Raise `StoreUnavailable` unless Redis answers PING."""
        with _unavailable_on_failure():
            await self._client.ping()

    async def close(self) -> None:
        """Close the client's connections; open change iterators end at their next error.

        Increments already submitted are answered first.
        """
        self._closed = True
        await self._coalesced_increments.drain()
        await self._client.aclose()

    # Helpers

    def _board(self, board_id: str) -> Board:
        board = self._boards.get(board_id)
        if board is None:
            raise ValueError(f"unknown board {board_id!r}")
        return board

    def _all_shard_keys(self, board: str, period: str) -> list[_PeriodKeys]:
        shards = self._board(board).shards
        if shards == 1:
            return [self._keys(board, period)]
        return [self._keys(board, period, shard) for shard in range(shards)]

    def _keys(self, board: str, period: str, shard: int = 0) -> _PeriodKeys:
        # A sharded board's shards carry different hash tags: different Cluster slots.
        # The rebuild claim is per board period, whatever the shard.
        claim_tag = f"{self._prefix}:{{{board}|{period}}}"
        if self._board(board).shards == 1:
            tag = claim_tag
        else:
            tag = f"{self._prefix}:{{{board}|{period}|{shard}}}"
        return _PeriodKeys(
            ranking=f"{tag}:ranking",
            events=f"{tag}:events",
            loaded=f"{tag}:loaded",
            rebuild=f"{claim_tag}:rebuild",
        )

    def _channel(self, board: str) -> str:
        return f"{self._prefix}:changes:{board}"

    def _expire_at_ms(self, board_id: str, period: str) -> int:
        """When a period's keys expire (Unix ms), 0 for never: `retention` after it ends."""
        board = self._board(board_id)
        if not board.is_valid_period(period):
            raise ValueError(f"{period!r} is not a period of board {board_id!r}")
        end = period_end(board.reset, period)
        if end is None:
            return 0
        # In milliseconds: a datetime past year 9999 overflows.
        end_ms = int(end.timestamp() * 1000) + int(self._retention.total_seconds() * 1000)
        return max(end_ms, int((time.time() + _MIN_EXPIRY.total_seconds()) * 1000))

    async def _pipelined(self, commands: Callable[[_AnyPipeline], None]) -> list[Any]:
        """Plain commands over the shards in one pipeline: on a cluster, one round trip
        per node in parallel, and none of a script call's overhead inside Redis."""
        pipe = self._client.pipeline(transaction=False)
        commands(pipe)
        with _unavailable_on_failure():
            if self._in_flight is None:
                return list(await pipe.execute())
            async with self._in_flight:
                return list(await pipe.execute())

    async def _fan_out(
        self, script: AsyncScript, calls: Sequence[tuple[list[str], Sequence[str | int | bytes]]]
    ) -> list[Any]:
        """One script run per shard, replies in order: one round trip.

        One Redis: a pipeline (cheaper on the client than separate calls). A cluster
        refuses scripts in pipelines: concurrent calls, one per shard.
        """
        if len(calls) == 1 or self._cluster:
            return list(
                await asyncio.gather(*(self._call(script, keys, args) for keys, args in calls))
            )

        def commands(pipe: _AnyPipeline) -> None:
            for keys, args in calls:
                pipe.evalsha(script.sha, len(keys), *keys, *args)

        try:
            return await self._pipelined(commands)
        except redis_errors.NoScriptError:
            # Not loaded on this server yet (a restart, a failover): load it, then again.
            # (redis-py's own pipeline scripts would ask SCRIPT EXISTS on every execute.)
            pass
        with _unavailable_on_failure():
            await self._client.script_load(script.script)
        return await self._pipelined(commands)

    async def _call(
        self, script: AsyncScript, keys: Sequence[str], args: Sequence[str | int | bytes]
    ) -> Any:
        started = time.perf_counter()
        failed = True
        try:
            if self._in_flight is None:
                with _unavailable_on_failure():
                    reply = await script(keys=keys, args=args)
            else:
                # The cluster client's per-node pools fail at once when full; wait instead,
                # as the blocking pool of a single Redis does (sharded reads fan out).
                async with self._in_flight:
                    with _unavailable_on_failure():
                        reply = await script(keys=keys, args=args)
            failed = False
            return reply
        finally:
            if self._observer is not None:
                self._observer.observe_store(
                    "redis",
                    self._script_names[script.sha],
                    time.perf_counter() - started,
                    failed=failed,
                )


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


def _increment_outcomes(
    increments: Sequence[ScoreIncrement], groups: list[tuple[str, str]], reply: list[Any]
) -> list[IncrementOutcome]:
    """Outcomes from increment.lua's reply, or its refusal raised."""
    status = int(reply[0])
    if status == 1:
        board, period = groups[int(reply[1]) - 1]
        raise RankingNotLoaded(board, period)
    if status == 2:
        failed = increments[int(reply[1]) - 1]
        raise ScoreOutOfRange(failed.username, failed.board)
    if len(reply) == 1:  # a dry run
        return []
    outcomes = []
    for index, increment in enumerate(increments):
        applied, score, rank, had_score, previous_score, previous_rank = reply[
            1 + 6 * index : 7 + 6 * index
        ]
        # Positional, in IncrementOutcome's field order: one per increment of a batch.
        outcomes.append(
            IncrementOutcome(
                increment,
                int(score),
                int(rank),
                bool(applied),
                int(previous_score) if had_score else None,
                int(previous_rank) if had_score else None,
            )
        )
    return outcomes


def _check_loaded(board: str, period: str, reply: list[Any]) -> None:
    if int(reply[0]) == 0:
        raise RankingNotLoaded(board, period)


def _ranked_players(board: str, period: str, reply: list[Any]) -> list[RankedPlayer]:
    _check_loaded(board, period, reply)
    return [
        RankedPlayer(username=_text(reply[at]), score=int(reply[at + 1]), rank=int(reply[at + 2]))
        for at in range(1, len(reply), 3)
    ]


def _scores_of(outcomes: Iterable[IncrementOutcome]) -> list[int]:
    scores: set[int] = set()
    for outcome in outcomes:
        scores.add(outcome.score)
        if outcome.previous_score is not None:
            scores.add(outcome.previous_score)
    return sorted(scores)


def _replay_ranks(
    outcomes: list[IncrementOutcome], higher_after: dict[int, int]
) -> list[IncrementOutcome]:
    """Board-wide ranks of one period's outcomes, in batch order.

    `higher_after[v]` counts the players above v once the batch was applied. Taking out
    the batch's own players (at their final scores) leaves those the batch did not
    touch; adding the batch's players at their scores of the moment gives the rank
    each increment had at its turn, as one unsharded script call reports it.
    """
    final: dict[str, int] = {}
    initial: dict[str, int | None] = {}
    for outcome in outcomes:
        username = outcome.increment.username
        initial.setdefault(username, outcome.previous_score)
        final[username] = outcome.score
    # A duplicate reports 0 for a player without a score, who has none at the end.
    for outcome in outcomes:
        if not outcome.applied and outcome.previous_score is None:
            username = outcome.increment.username
            if final[username] == outcome.score and initial[username] is None:
                final.pop(username)
    finals = SortedList(final.values())
    current = SortedList(score for score in initial.values() if score is not None)

    def rank(score: int) -> int:
        untouched = higher_after[score] - (len(finals) - int(finals.bisect_right(score)))
        return 1 + untouched + len(current) - int(current.bisect_right(score))

    ranked = []
    for outcome in outcomes:
        if not outcome.applied:
            standing = rank(outcome.score)
            previous = None if outcome.previous_score is None else standing
            ranked.append(dataclasses.replace(outcome, rank=standing, previous_rank=previous))
            continue
        previous_rank = None
        if outcome.previous_score is not None:
            previous_rank = rank(outcome.previous_score)
            current.remove(outcome.previous_score)
        current.add(outcome.score)
        ranked.append(
            dataclasses.replace(outcome, rank=rank(outcome.score), previous_rank=previous_rank)
        )
    return ranked


def _order(entry: tuple[str, int]) -> tuple[int, str]:
    """Leaderboard order: score descending, then username ascending (code point order is
    the UTF-8 byte order Redis uses for ties)."""
    return (-entry[1], entry[0])


def _rank_by_position(
    entries: list[tuple[str, int]],
    offset: int,
    limit: int,
    *,
    first_rank: int | None,
    start: int = 0,
) -> list[RankedPlayer]:
    """Ranked players from `entries` (in order, entries[0] at 0-based board position
    `start`), those at indexes offset .. offset+limit-1. A rank is the position + 1,
    shared on ties; `first_rank` is the first shown one's when known, else the entries
    begin at the top of the board (every tie visible)."""
    players = []
    rank = 0
    previous: int | None = None
    for index, (username, score) in enumerate(entries[: offset + limit]):
        if previous is None or score != previous:
            rank = start + index + 1
        if index == 0 and first_rank is not None:
            rank = first_rank
        previous = score
        if index >= offset:
            players.append(RankedPlayer(username=username, score=score, rank=rank))
    return players


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
        # Positional, in ScoreChange's field order: every instance decodes every change.
        return [
            ScoreChange(
                str(fields["board"]),
                str(fields["period"]),
                str(fields["username"]),
                _optional_int(fields["previous_score"]),
                int(fields["score"]),
                _optional_int(fields["previous_rank"]),
                int(fields["rank"]),
            )
            for fields in items
        ]
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        logger.warning("ignoring a malformed change message: %r", data)
        return []


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)
