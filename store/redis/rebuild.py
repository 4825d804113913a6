"""What a rebuild from the history does to Redis: claims, loading a period, reading every
total back, and the loaded markers that say whether a period may be served."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import suppress
from itertools import islice
from typing import TypeVar

from store.board_kinds import TieBreak
from store.boards import Board
from store.errors import RankingNotLoaded, ScoreOutOfRange
from store.models import MAX_EXACT_SCORE
from store.redis.connection import AnyPipeline, Connection, text, unavailable_on_failure
from store.redis.keys import KeyLayout, fingerprint, instants_key, stored_score, total_of
from store.redis.scripts import Scripts
from store.tiebreak import decode_member, encode_instant, encode_member, score_from_stored

T = TypeVar("T")

LOAD_CHUNK = 10_000
"""Members per ZADD / SADD while loading: big enough to be fast, small enough not to block."""
LOAD_CHUNKS_PER_PIPELINE = 10
LOAD_TEMP_TTL_MS = 3_600_000
"""Temporary keys of a load that died half-way disappear on their own."""


class Rebuilds:
    """Loading periods into Redis and the claims that let one instance do it."""

    def __init__(self, connection: Connection, layout: KeyLayout, scripts: Scripts) -> None:
        self._connection = connection
        self._layout = layout
        self._scripts = scripts

    async def claim(self, board: str, period: str, ttl_seconds: float) -> str | None:
        """SET NX PX a random token; the token, or None when another claim holds."""
        token = secrets.token_hex(16)
        with unavailable_on_failure():
            won = await self._connection.client.set(
                self._layout.keys(board, period).rebuild,
                token,
                nx=True,
                px=max(1, round(ttl_seconds * 1000)),
            )
        return token if won else None

    async def release(self, board: str, period: str, token: str) -> None:
        """Delete the claim only while it still holds `token` (compare-and-delete script)."""
        await self._scripts.release(board, period, token)

    async def load(
        self,
        board: str,
        period: str,
        totals: Iterable[tuple[str, int]],
        client_events: Iterable[tuple[str, str, int]],
        *,
        instants: Mapping[str, int] | None = None,
        clock: int | None = None,
        writers: Iterable[tuple[str, int]] = (),
    ) -> None:
        """Replace the period's ranking and event ids (username, event id, delta), then
        mark it loaded, atomically. On boards that keep instants (scripts.keeps_instants)
        `instants` gives the instant each player reached the kept score and `clock` the
        last instant given out (docs/boards.md, "Rebuild"). `writers`: each writer's last
        sequence in the period, restored in every shard (idempotency per writer).

        Writes temporary keys in pipelined chunks, then one script swaps them in. A
        sharded board is loaded shard by shard, each atomically, then its board period's
        event-id record (claims.py), whose presence completes the load.
        """
        config = self._layout.board(board)
        # Every shard of the period holds the writer's last sequence of the whole period: a
        # replayed call is refused whichever shards it touches.
        sequences = {writer: str(sequence) for writer, sequence in writers}
        if not config.plain and config.shards == 1:
            await self._load_ruled(
                config, period, totals, client_events, instants or {}, clock, sequences
            )
            return
        if config.shards == 1:
            bound = (
                (event_id, fingerprint(user, delta)) for user, event_id, delta in client_events
            )
            await self._load_shard(board, period, 0, totals, bound, empty=None, writers=sequences)
            return
        shard_totals: list[list[tuple[str, int]]] = [[] for _ in range(config.shards)]
        shard_events: list[list[tuple[str, str]]] = [[] for _ in range(config.shards)]
        for username, total in totals:
            shard_totals[config.shard_of(username)].append((username, total))
        for username, event_id, delta in client_events:
            shard_events[config.shard_of(username)].append((event_id, fingerprint(username, delta)))
        # One expiry for every shard: a shard that is empty in a busy period is not.
        empty = not any(shard_totals) and not any(shard_events)
        await asyncio.gather(
            *(
                self._load_shard(
                    board,
                    period,
                    shard,
                    shard_totals[shard],
                    shard_events[shard],
                    empty=empty,
                    instants=instants or {},
                    # Every shard's clock at the period's last instant: each shard's own
                    # last one is no later, so later writes still get later instants.
                    clock=clock if config.keeps_instants else None,
                    writers=sequences,
                )
                for shard in range(config.shards)
            )
        )
        record = [item for events in shard_events for item in events]
        await self._load_claims(board, period, record, empty=empty)

    async def _load_ruled(
        self,
        config: Board,
        period: str,
        totals: Iterable[tuple[str, int]],
        client_events: Iterable[tuple[str, str, int]],
        instants: Mapping[str, int],
        clock: int | None,
        writers: dict[str, str],
    ) -> None:
        """Load an unsharded board of another order, tie-break or rule: stored scores by
        the board's sign, EARLIEST members behind their instants, the instants hash."""
        board = config.id
        keys = self._layout.keys(board, period)
        token = secrets.token_hex(8)
        temp_ranking = f"{keys.ranking}:load:{token}"
        temp_events = f"{keys.events}:load:{token}"
        temp_instants = f"{instants_key(keys)}:load:{token}" if config.keeps_instants else None
        temp_writers = f"{keys.writers}:load:{token}"
        earliest = config.tie_break is TieBreak.EARLIEST
        players = list(totals)
        written = 0

        def ranking_command(pipe: AnyPipeline, chunk: list[tuple[str, int]]) -> None:
            mapping: dict[str, int] = {}
            reached: list[tuple[str, str]] = []
            for username, score in chunk:
                if abs(score) > MAX_EXACT_SCORE:
                    raise ScoreOutOfRange(username, board)
                instant = instants.get(username, 0)
                mapping[encode_member(config.tie_break, instant, username)] = config.sign * score
                if earliest:
                    reached.append((username, encode_instant(instant)))
            pipe.zadd(temp_ranking, mapping)
            pipe.pexpire(temp_ranking, LOAD_TEMP_TTL_MS)
            if reached and temp_instants is not None:
                pipe.hset(temp_instants, mapping=dict(reached))
                pipe.pexpire(temp_instants, LOAD_TEMP_TTL_MS)

        def events_command(pipe: AnyPipeline, chunk: list[tuple[str, str]]) -> None:
            pipe.hset(temp_events, mapping=dict(chunk))
            pipe.pexpire(temp_events, LOAD_TEMP_TTL_MS)

        temps = [temp_ranking, temp_events, temp_writers] + (
            [temp_instants] if temp_instants else []
        )
        try:
            with unavailable_on_failure():
                written += await self._write_chunks(players, ranking_command)
                written += await self._write_chunks(
                    (
                        (event_id, fingerprint(user, value))
                        for user, event_id, value in client_events
                    ),
                    events_command,
                )
                if temp_instants is not None and clock is not None:
                    await self._connection.client.hset(temp_instants, "", encode_instant(clock))
                    await self._connection.client.pexpire(temp_instants, LOAD_TEMP_TTL_MS)
                written += await self._write_writers(temp_writers, writers)
            expire_at = self._layout.expire_at_ms(board, period, empty=written == 0)
            await self._scripts.load(
                keys, temp_ranking, temp_events, expire_at, temp_instants, temp_writers
            )
        except Exception:
            with suppress(Exception):
                await self._connection.client.unlink(*temps)
            raise

    async def _load_shard(
        self,
        board: str,
        period: str,
        shard: int,
        totals: Iterable[tuple[str, int]],
        event_ids: Iterable[tuple[str, str]],
        *,
        empty: bool | None,
        instants: Mapping[str, int] | None = None,
        clock: int | None = None,
        writers: Mapping[str, str] | None = None,
    ) -> None:
        """Load one shard; `empty` says whether the whole period is (None: this shard is
        the period, count what it writes); `clock`: the instants hash's clock, on boards
        that keep instants; on EARLIEST boards `instants` the instant each player reached
        its score (its member, and the shard's instants hash)."""
        keys = self._layout.keys(board, period, shard)
        token = secrets.token_hex(8)
        temp_ranking = f"{keys.ranking}:load:{token}"
        temp_events = f"{keys.events}:load:{token}"
        temp_instants = f"{instants_key(keys)}:load:{token}" if clock is not None else None
        temp_writers = f"{keys.writers}:load:{token}"
        config = self._layout.board(board)
        sign = config.sign
        earliest = config.tie_break is TieBreak.EARLIEST
        if earliest and temp_instants is None:
            temp_instants = f"{instants_key(keys)}:load:{token}"
        reached = instants or {}

        def ranking_command(pipe: AnyPipeline, chunk: list[tuple[str, int]]) -> None:
            mapping: dict[str, int] = {}
            members: dict[str, str] = {}
            for username, total in chunk:
                if abs(total) > MAX_EXACT_SCORE:
                    raise ScoreOutOfRange(username, board)
                stored = stored_score(total) if sign < 0 else total
                if earliest:
                    instant = reached.get(username, 0)
                    mapping[encode_member(config.tie_break, instant, username)] = stored
                    members[username] = encode_instant(instant)
                else:
                    mapping[username] = stored
            pipe.zadd(temp_ranking, mapping)
            pipe.pexpire(temp_ranking, LOAD_TEMP_TTL_MS)
            if members and temp_instants is not None:
                pipe.hset(temp_instants, mapping=dict(members.items()))
                pipe.pexpire(temp_instants, LOAD_TEMP_TTL_MS)

        def events_command(pipe: AnyPipeline, chunk: list[tuple[str, str]]) -> None:
            pipe.hset(temp_events, mapping=dict(chunk))
            pipe.pexpire(temp_events, LOAD_TEMP_TTL_MS)

        try:
            with unavailable_on_failure():
                written = await self._write_chunks(totals, ranking_command)
                written += await self._write_chunks(event_ids, events_command)
                if temp_instants is not None and clock is not None:
                    await self._connection.client.hset(temp_instants, "", encode_instant(clock))
                    await self._connection.client.pexpire(temp_instants, LOAD_TEMP_TTL_MS)
                written += await self._write_writers(temp_writers, writers or {})
            if empty is None:
                empty = written == 0
            expire_at = self._layout.expire_at_ms(board, period, empty=empty)
            await self._scripts.load(
                keys, temp_ranking, temp_events, expire_at, temp_instants, temp_writers
            )
        except Exception:
            with suppress(Exception):
                await self._connection.client.unlink(
                    temp_ranking,
                    temp_events,
                    temp_writers,
                    *([temp_instants] if temp_instants else []),
                )
            raise

    async def _write_writers(self, temp_writers: str, writers: Mapping[str, str]) -> int:
        """Write the restored writers hash (few entries: one per writer); how many."""
        if writers:
            await self._connection.client.hset(temp_writers, mapping=dict(writers.items()))
            await self._connection.client.pexpire(temp_writers, LOAD_TEMP_TTL_MS)
        return len(writers)

    async def _load_claims(
        self, board: str, period: str, bound: Iterable[tuple[str, str]], *, empty: bool
    ) -> None:
        """Write a sharded period's event-id record (with its field '') and swap it in."""
        keys = self._layout.keys(board, period)
        token = secrets.token_hex(8)
        temp_claims = f"{keys.claims}:load:{token}"
        temp_bucket = f"{keys.claims}:ids:load:{token}"

        def claims_command(pipe: AnyPipeline, chunk: list[tuple[str, str]]) -> None:
            pipe.hset(temp_bucket, mapping=dict(chunk))
            pipe.pexpire(temp_bucket, LOAD_TEMP_TTL_MS)

        try:
            with unavailable_on_failure():
                await self._connection.client.hset(temp_claims, "", "")
                await self._connection.client.pexpire(temp_claims, LOAD_TEMP_TTL_MS)
                await self._write_chunks(bound, claims_command)
            await self._scripts.load_claims(
                keys,
                temp_claims,
                temp_bucket,
                self._layout.expire_at_ms(board, period, empty=empty),
            )
        except Exception:
            with suppress(Exception):
                await self._connection.client.unlink(temp_claims, temp_bucket)
            raise

    async def _write_chunks(
        self, items: Iterable[T], command: Callable[[AnyPipeline, list[T]], None]
    ) -> int:
        """Write `items` in pipelined chunks; how many there were."""
        pipe = self._connection.client.pipeline(transaction=False)
        queued = written = 0
        for chunk in _chunks(items, LOAD_CHUNK):
            command(pipe, chunk)
            written += len(chunk)
            queued += 1
            if queued == LOAD_CHUNKS_PER_PIPELINE:
                await pipe.execute()
                queued = 0
        if queued:
            await pipe.execute()
        return written

    async def totals(self, board: str, period: str) -> dict[str, int]:
        """Every player's total in the period, read with ZSCAN in chunks.

        One ZRANGE of a million players outlasts the socket timeout while redis-py
        parses it. ZSCAN returns every player present throughout the scan (a score
        changed meanwhile may be either value): good enough for reconciliation, which
        races with live increments anyway.
        """
        client = self._connection.client
        config = self._layout.board(board)
        totals: dict[str, int] = {}
        with unavailable_on_failure():
            for keys in self._layout.all_shard_keys(board, period):
                if not await client.exists(keys.loaded):
                    raise RankingNotLoaded(board, period)
                async for member, stored in client.zscan_iter(keys.ranking, count=LOAD_CHUNK):
                    if config.plain:
                        totals[text(member)] = total_of(stored)
                    else:
                        _, username = decode_member(config.tie_break, text(member))
                        totals[username] = score_from_stored(config.sort_order, stored)
                # Lost during the scan: what was read may be partial.
                if not await client.exists(keys.loaded):
                    raise RankingNotLoaded(board, period)
        return totals

    async def is_loaded(self, board: str, period: str) -> bool:
        """Whether the period's loaded marker is present (every shard's, when sharded).

        A sharded period with only some shards (or its event-id record) loaded (one node
        lost its data) has the others' markers removed too: writes then wait for the
        rebuild instead of landing in shards the rebuild is about to replace.
        """
        shard_keys = self._layout.all_shard_keys(board, period)
        if len(shard_keys) == 1:
            with unavailable_on_failure():
                return bool(await self._connection.client.exists(shard_keys[0].loaded))
        # The board period's event-id record completes a sharded load (claims.py).
        claims = self._layout.keys(board, period).claims

        def exists(pipe: AnyPipeline) -> None:
            for keys in shard_keys:
                pipe.exists(keys.loaded)
            pipe.exists(claims)

        def unload(pipe: AnyPipeline) -> None:
            for keys in shard_keys:
                pipe.delete(keys.loaded)

        present = await self._connection.pipelined(exists)
        if all(present):
            return True
        if any(present):
            await self._connection.pipelined(unload)
        return False

    async def unload(self, board: str, period: str) -> None:
        """Delete the period's loaded markers (every shard's): every operation on it then
        waits for a rebuild (a dead instance's reconcile, resolvers/instances.py)."""
        shard_keys = self._layout.all_shard_keys(board, period)

        def unload(pipe: AnyPipeline) -> None:
            for keys in shard_keys:
                pipe.delete(keys.loaded)

        await self._connection.pipelined(unload)


def _chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk
