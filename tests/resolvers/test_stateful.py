"""Correctness under any sequence: a stateful property test of `LeaderboardService`.

A hypothesis state machine drives the real service on real stores with random
increments (single ones, batches of 1..10, batches spoiled by one invalid item,
batches of a bad size, replays of earlier event ids, concurrent single increments,
writers' calls with a sequence: new, skipping ahead, stale, or retried),
clock moves across day and month boundaries, lost live rankings (Redis emptied after
the write buffer reached MySQL) and restarts, moderation (removePlayer, banPlayer,
unbanPlayer, erasePlayer), and reads of the current and of earlier periods. Every answer
is compared with a plain Python model of the contract:

- per (board, period): username -> total, and the client event ids applied, each bound
  to its increment (username, delta): a replay answers with the standing, the same id
  for another increment is refused (BAD_USER_INPUT) and changes nothing;
- per (board, period): each writer's last applied sequence; a writer's call whose
  sequence is not above it in a period it touches is a replay (nothing applied, every
  increment answers with the standing), whatever its event ids; after a loss the store
  knows what the history's writer_sequences say (the highest sequence of each writer's
  calls that stored a row in the period; an erasure lowers none);
- standard competition ranks (1, 2, 2, 4), ties listed by username ascending (code
  point order, which is also the UTF-8 byte order Redis sorts members by);
- a neighborhood is the player and up to `radius` players above and below, best first;
- a batch is all or nothing: one invalid item (BAD_USER_INPUT, NOT_FOUND for an
  unknown board, FORBIDDEN for a banned player) or a total leaving +-(2^53 - 1) makes it
  fail and change nothing;
- a removed player leaves the period (its event ids stay bound) and starts afresh; a
  banned player is hidden from every period and refused, and an unban shows again what
  it had; an erased player is gone everywhere, its event ids free, and `eventsDeleted`
  counts its history rows (increments and removals).

It runs on both deployments: Redis + MariaDB (the shared services, a private key
prefix and database per example) and embedded + SQLite (a temporary file). Hypothesis
state machines are synchronous, so each machine owns an `asyncio.Runner` and runs
the async service on it, from `__init__` to `teardown`.

A second machine (`KindsMachine`) drives boards of every update rule x sort order x
tie-break, and boards with caps, against `tests/support/board_model.PeriodModel`: each
write's answer (kept score, rank, previous standing, whether it changed), replays and
reused event ids, the wrong mutation for a board, caps and the exact range, every read,
and every rank after Redis loses everything or the process restarts (a rebuild from the
history replays the writes in the order applied, `applied_at_us`), across month ends.

LEADERBOARD_PROPERTY_EXAMPLES sets the examples per backend (default 25),
LEADERBOARD_PROPERTY_STEPS the steps per example (default 30).
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import os
import time
import unicodedata
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, TypeVar

import orjson
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from batcher import WriteBatcher
from resolvers.errors import ApiError, ErrorCode
from resolvers.moderation import PlayerModeration
from resolvers.seasons import Seasons
from resolvers.service import IncrementRequest, LeaderboardService
from store.ban_registry import BanRegistry
from store.board_kinds import UpdateRule
from store.board_model import kept_score
from store.board_notices import NoNotices
from store.boards import Board, ResetPeriod
from store.embedded_profiles import InProcessProfileCache
from store.embedded_ranking import EmbeddedRankingStore
from store.models import MAX_EXACT_SCORE, NO_PROFILE, IncrementOutcome, PlayerProfile, RankedPlayer
from store.period_notices import InProcessPeriodNotices
from store.ports import RankingStore
from store.profiles import PlayerProfiles
from store.recovery import RankingRecovery
from store.redis import RedisRankingStore
from store.sql import SqlScoreHistory
from tests.support.board_model import RULED_BOARDS, SHARDED_KINDS, PeriodModel
from tests.support.machines import Backend, StoresMachine
from tests.support.redis_cluster import PrivateRedisCluster
from tests.support.seasons import delete_cluster_keys
from tests.support.shared_services import (
    REDIS_URL,
    delete_prefix,
)

pytestmark = pytest.mark.property

T = TypeVar("T")

EXAMPLES = int(os.environ.get("LEADERBOARD_PROPERTY_EXAMPLES", "25"))
STEPS = int(os.environ.get("LEADERBOARD_PROPERTY_STEPS", "30"))
SETTINGS = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

BOARDS = (
    Board("global", ResetPeriod.MONTHLY),
    Board("daily", ResetPeriod.DAILY),
    Board("alltime", ResetPeriod.NEVER),
)
BOARD_IDS = tuple(board.id for board in BOARDS)
UNTOUCHED_PERIODS = {"global": "2019-07", "daily": "2019-07-14", "alltime": "all"}
"""A period of each board nobody ever scores in (read back empty, rebuilt from nothing)."""

MAX_BATCH = 10
MAX_DELTA = MAX_EXACT_SCORE
"""The largest bound the settings allow, so that one increment can overflow a total."""
RETENTION = timedelta(days=35)
FLUSH_INTERVAL = 0.02
WAIT = 10.0

# Few names, so that ties and repeated players are the rule. Ordered by code point:
# "Bob" < "_x" < "a" < "alice" < "bob" < "z.9" < "Émile" < "é"*64 (UTF-8 bytes agree).
USERNAMES = ("a", "alice", "Bob", "bob", "_x", "z.9", "Émile", "é" * 64)
# Few ids, so that replays are frequent; "e1" and "E1" are different ids.
EVENT_IDS = ("e1", "E1", "e2", "n:1.a_b-c", "Z" * 128)
_SMALL = (*range(-5, 0), *range(1, 6))
DELTAS = st.sampled_from((*_SMALL * 5, MAX_DELTA, -MAX_DELTA))
"""Small deltas, and now and then one as large as allowed (to reach the range limit)."""

# Clocks start just before a day, month and/or year ends (and on a leap day's eve).
STARTS = (
    datetime(2026, 1, 31, 22, 30, tzinfo=UTC),
    datetime(2025, 12, 31, 23, 0, tzinfo=UTC),
    datetime(2028, 2, 28, 23, 30, tzinfo=UTC),
    datetime(2026, 6, 15, 12, 0, tzinfo=UTC),
)

BAD = ErrorCode.BAD_USER_INPUT
NOT_FOUND = ErrorCode.NOT_FOUND
FORBIDDEN = ErrorCode.FORBIDDEN

# One field of a valid increment replaced by a value the contract rejects.
INVALID_FIELDS: tuple[tuple[str, Any, ErrorCode], ...] = (
    ("username", "", BAD),
    ("username", "bob smith", BAD),
    ("username", "bob!", BAD),
    ("username", "x" * 65, BAD),
    ("username", unicodedata.normalize("NFD", "Émile"), BAD),
    ("delta", 0, BAD),
    ("delta", MAX_DELTA + 1, BAD),
    ("delta", -(MAX_DELTA + 1), BAD),
    ("event_id", "", BAD),
    ("event_id", "e 1", BAD),
    ("event_id", "~" + "0" * 32, BAD),
    ("event_id", "e" * 129, BAD),
    ("event_id", "é1", BAD),
    ("board", "nope", NOT_FOUND),
)


def _spoil(
    request: IncrementRequest, field: tuple[str, Any, ErrorCode]
) -> tuple[IncrementRequest, ErrorCode, str]:
    name, value, code = field
    return request._replace(**{name: value}), code, name


valid_requests = st.builds(
    IncrementRequest,
    username=st.sampled_from(USERNAMES),
    delta=DELTAS,
    board=st.sampled_from(BOARD_IDS),
    event_id=st.none() | st.sampled_from(EVENT_IDS),
)
invalid_requests = st.builds(_spoil, valid_requests, st.sampled_from(INVALID_FIELDS))
usernames = st.sampled_from(USERNAMES)
WRITERS = ("gs-1", "gs-2")
boards = st.sampled_from(BOARD_IDS)
period_choices = st.integers(min_value=0, max_value=5)
"""0: the current period, 1: the one before, more: an older one or one never used."""
limits = st.integers(min_value=1, max_value=10) | st.just(100)
offsets = st.integers(min_value=0, max_value=9)
radii = st.integers(min_value=0, max_value=4) | st.just(50)


@dataclass(frozen=True, slots=True)
class BadRead:
    """A read the contract rejects, with the code it must fail with."""

    label: str
    read: Callable[[LeaderboardService], Coroutine[Any, Any, object]]
    code: ErrorCode

    def __repr__(self) -> str:
        return f"BadRead({self.label!r})"


BAD_READS = (
    BadRead("limit 0", lambda s: s.top("global", None, 0), BAD),
    BadRead("limit 101", lambda s: s.top("global", None, 101), BAD),
    BadRead("offset -1", lambda s: s.top("daily", None, 10, -1), BAD),
    BadRead("radius -1", lambda s: s.neighborhood("global", None, "bob", -1), BAD),
    BadRead("radius 51", lambda s: s.neighborhood("global", None, "bob", 51), BAD),
    BadRead("month 13", lambda s: s.top("global", "2026-13", 10), BAD),
    BadRead("a day on a monthly board", lambda s: s.player_count("global", "2026-01-31"), BAD),
    BadRead("30 February", lambda s: s.player("daily", "2026-02-30", "bob"), BAD),
    BadRead("a month on a never board", lambda s: s.top("alltime", "2026-01", 10), BAD),
    BadRead("bad username", lambda s: s.player("global", None, "bob smith"), BAD),
    BadRead("empty username", lambda s: s.neighborhood("daily", None, "", 1), BAD),
    BadRead("unknown board", lambda s: s.player_count("nope", None), NOT_FOUND),
    BadRead("unknown board top", lambda s: s.top("nope", None, 10), NOT_FOUND),
    BadRead("no names", lambda s: s.players("global", None, []), BAD),
    BadRead("101 names", lambda s: s.players("global", None, [f"p{i}" for i in range(101)]), BAD),
    BadRead("a name twice", lambda s: s.players("daily", None, ["bob", "a", "bob"]), BAD),
    BadRead("a bad name", lambda s: s.players("global", None, ["bob", "bob smith"]), BAD),
    BadRead("players of no board", lambda s: s.players("nope", None, ["bob"]), NOT_FOUND),
    BadRead("first 0", lambda s: s.ranking("global", None, 0, None), BAD),
    BadRead("first 101", lambda s: s.ranking("alltime", None, 101, None), BAD),
    BadRead("ranking of no board", lambda s: s.ranking("nope", None, 10, None), NOT_FOUND),
)


# The model


@dataclass(frozen=True, slots=True)
class Standing:
    """What an increment must answer (the comparable part of an `IncrementOutcome`)."""

    applied: bool
    score: int
    rank: int
    previous_score: int | None
    previous_rank: int | None


def rank_of(scores: dict[str, int], score: int) -> int:
    """Standard competition rank: 1 + the number of players with a strictly higher score."""
    return 1 + sum(1 for other in scores.values() if other > score)


def standings(scores: dict[str, int]) -> list[RankedPlayer]:
    """Everybody, best first, ties by username ascending."""
    ordered = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
    return [
        RankedPlayer(username=username, score=score, rank=rank_of(scores, score))
        for username, score in ordered
    ]


Key = tuple[str, str]


@dataclass(frozen=True, slots=True)
class ModelIncrement:
    key: Key
    username: str
    delta: int
    event_id: str | None


class Model:
    """The contract in plain Python: totals and seen client event ids per (board, period)."""

    def __init__(self) -> None:
        self.scores: dict[Key, dict[str, int]] = {}
        self.seen: dict[Key, dict[str, tuple[str, int]]] = {}
        self.profiles: dict[str, PlayerProfile] = {}
        """Per player, shared by every board: what setPlayerProfile left."""
        self.rows: dict[str, int] = {}
        """History rows per player (applied increments and removals)."""
        self.banned: set[str] = set()
        self.hidden: dict[Key, dict[str, int]] = {}
        """The totals of banned players, shown again when they are unbanned."""
        self.writers: dict[Key, dict[str, int]] = {}
        """Idempotency per writer: each writer's last applied sequence per period, as the
        live store holds it."""
        self.writer_rows: dict[Key, dict[str, int]] = {}
        """Per period and writer: the highest sequence of the writer's calls that stored a
        history row in the period (the `writer_sequences` table, upserted with the rows);
        what a rebuild restores (`durable_writers`). Erasure deletes the player's rows but
        not this: the sequence survives it."""

    def set_profile(self, username: str, display_name: str | None, metadata: str | None) -> None:
        """None leaves a field, "" (a name) and "{}" (metadata) clear it."""
        current = self.profiles.get(username, NO_PROFILE)
        name = current.display_name if display_name is None else (display_name or None)
        data = current.metadata if metadata is None else (None if metadata == "{}" else metadata)
        self.profiles[username] = PlayerProfile(display_name=name, metadata=data)

    def apply(
        self, increments: Sequence[ModelIncrement], writer: tuple[str, int] | None = None
    ) -> list[Standing] | None:
        """Apply a batch in order, all or nothing; None (nothing changed) when a total
        would leave the range or an event id is reused for another increment. A writer's
        call whose sequence is not above the writer's last in a period it touches is a
        replay: nothing changes, every increment answers with the standing."""
        touched = {increment.key for increment in increments}
        if writer is not None and any(
            writer[1] <= self.writers.get(key, {}).get(writer[0], -1) for key in touched
        ):
            replays = []
            for increment in increments:
                totals = self.scores.get(increment.key, {})
                old = totals.get(increment.username)
                previous_rank = None if old is None else rank_of(totals, old)
                current = old or 0
                replays.append(
                    Standing(False, current, rank_of(totals, current), old, previous_rank)
                )
            return replays
        applied_players: set[tuple[Key, str]] = set()
        scores = {key: dict(totals) for key, totals in self.scores.items()}
        seen = {key: dict(ids) for key, ids in self.seen.items()}
        rows = dict(self.rows)
        answers: list[Standing] = []
        for increment in increments:
            totals = scores.setdefault(increment.key, {})
            ids = seen.setdefault(increment.key, {})
            old = totals.get(increment.username)
            previous_rank = None if old is None else rank_of(totals, old)
            if increment.event_id is not None and increment.event_id in ids:
                if ids[increment.event_id] != (increment.username, increment.delta):
                    return None  # the id names another increment: refused
                # A replay: nothing changes; without a score one stands where 0 would.
                current = old or 0
                answers.append(
                    Standing(False, current, rank_of(totals, current), old, previous_rank)
                )
                continue
            new = (old or 0) + increment.delta
            if abs(new) > MAX_EXACT_SCORE:
                return None
            totals[increment.username] = new
            rows[increment.username] = rows.get(increment.username, 0) + 1
            applied_players.add((increment.key, increment.username))
            if increment.event_id is not None:
                ids[increment.event_id] = (increment.username, increment.delta)
            answers.append(Standing(True, new, rank_of(totals, new), old, previous_rank))
        self.scores, self.seen, self.rows = scores, seen, rows
        if writer is not None:
            name, sequence = writer
            for key in touched:
                self.writers.setdefault(key, {})[name] = sequence
            for key in {key for key, _ in applied_players}:
                durable = self.writer_rows.setdefault(key, {})
                durable[name] = max(sequence, durable.get(name, -1))
        return answers

    def durable_writers(self, key: Key) -> dict[str, int]:
        """Each writer's highest sequence stored with the period's history rows."""
        return dict(self.writer_rows.get(key, {}))

    def lose_writers(self) -> None:
        """The live store lost every period: each is rebuilt with what the history has."""
        self.writers = {key: self.durable_writers(key) for key in self.writer_rows}

    def remove(self, key: Key, username: str) -> int:
        """Take a player off one period (a removal row when it had a score); 0 or 1."""
        if self.scores.get(key, {}).pop(username, None) is None:
            return 0
        self.rows[username] = self.rows.get(username, 0) + 1
        return 1

    def ban(self, username: str) -> int:
        """Hide the player everywhere; how many periods showed it."""
        self.banned.add(username)
        shown = 0
        for key, totals in self.scores.items():
            if username in totals:
                self.hidden.setdefault(key, {})[username] = totals.pop(username)
                shown += 1
        return shown

    def unban(self, username: str) -> bool:
        """Show the player again; False when it was not banned."""
        if username not in self.banned:
            return False
        self.banned.discard(username)
        for key, totals in self.hidden.items():
            if username in totals:
                self.scores.setdefault(key, {})[username] = totals.pop(username)
        return True

    def erase(self, username: str) -> tuple[int, int]:
        """Forget the player: (periods that showed it, history rows deleted)."""
        self.banned.discard(username)
        self.profiles.pop(username, None)
        shown = 0
        for totals in self.scores.values():
            if totals.pop(username, None) is not None:
                shown += 1
        for totals in self.hidden.values():
            totals.pop(username, None)
        for ids in self.seen.values():
            for event_id in [event_id for event_id, bound in ids.items() if bound[0] == username]:
                del ids[event_id]
        # The writers' sequences (`writer_rows`) survive: erasure deletes event rows only.
        return shown, self.rows.pop(username, 0)

    def refusal(
        self,
        requests: Sequence[IncrementRequest],
        spoiled: int | None = None,
        spoiled_field: str = "",
        spoiled_code: ErrorCode = BAD,
    ) -> ErrorCode | None:
        """The code validation refuses a batch with: the first item's failure, checked in
        the service's order (board, eventId, username, ban, delta); None when valid."""
        for index, request in enumerate(requests):
            if index == spoiled:
                if spoiled_field == "delta" and request.username in self.banned:
                    return FORBIDDEN
                return spoiled_code
            if request.username in self.banned:
                return FORBIDDEN
        return None

    def standings(self, board: str, period: str) -> list[RankedPlayer]:
        return standings(self.scores.get((board, period), {}))

    def player(self, board: str, period: str, username: str) -> RankedPlayer | None:
        for player in self.standings(board, period):
            if player.username == username:
                return player
        return None

    def neighborhood(
        self, board: str, period: str, username: str, radius: int, fill: bool = False
    ) -> list[RankedPlayer]:
        everybody = self.standings(board, period)
        for position, player in enumerate(everybody):
            if player.username == username:
                if not fill:
                    return everybody[max(0, position - radius) : position + radius + 1]
                # 2r + 1 players whenever there are that many: the window shifts at the ends.
                start = max(0, min(position - radius, len(everybody) - (2 * radius + 1)))
                return everybody[start : start + 2 * radius + 1]
        return []

    def players(self, board: str, period: str, usernames: Sequence[str]) -> list[RankedPlayer]:
        """The named ones with a score, best first (ties by username)."""
        return [player for player in self.standings(board, period) if player.username in usernames]


# The machine


class LeaderboardMachine(StoresMachine):
    """The real service on real stores, step by step against the model."""

    def __init__(self) -> None:
        super().__init__("lbprop")
        self.model = Model()
        self.moment = STARTS[0]
        self.periods: dict[str, list[str]] = {}
        """Per board, every period the clock has been in, oldest first (last: current)."""
        self.sent: list[IncrementRequest] = []
        """Requests with a client event id that were answered, to replay later."""
        self.writer_calls: list[tuple[str, int, list[IncrementRequest]]] = []
        """Writers' calls that were answered (writer, sequence, requests), to replay later."""
        self.last_sequence: dict[str, int] = {}
        """The highest sequence each writer has sent."""
        self._fresh_ids = itertools.count()
        self._open_all()
        self._move_clock(self.moment)

    # Life cycle

    async def _start_components(self) -> None:
        """What one service process runs on, like `server.resources.build_resources`."""
        self.ranking: RankingStore
        if self.backend is Backend.REDIS_MARIADB:
            self.ranking = RedisRankingStore.from_url(
                REDIS_URL, key_prefix=self.prefix, boards=BOARDS, retention=RETENTION
            )
        else:
            self.ranking = EmbeddedRankingStore(boards=BOARDS)
        self.batcher = WriteBatcher(self.history, flush_interval=FLUSH_INTERVAL)
        self.recovery = RankingRecovery(
            self.ranking,
            self.history,
            claim_seconds=WAIT,
            wait_seconds=WAIT,
            # One process: the fence is its own write buffer.
            fence=lambda: self.batcher.flushed_through_now(skip_parked=True),
        )
        cache = (
            self.ranking.profile_cache()
            if isinstance(self.ranking, RedisRankingStore)
            else InProcessProfileCache()
        )
        self.player_profiles = PlayerProfiles(self.history.profile_table(), cache)
        records = self.history.player_records()
        self.bans = BanRegistry(records, NoNotices(), reload_seconds=WAIT)
        self.service = LeaderboardService(
            ranking=self.ranking,
            batcher=self.batcher,
            recovery=self.recovery,
            boards=BOARDS,
            max_delta=MAX_DELTA,
            max_batch_increments=MAX_BATCH,
            clock=self._clock,
            profiles=self.player_profiles,
            banned=self.bans.names,
        )
        self.moderation = PlayerModeration(
            service=self.service,
            ranking=self.ranking,
            batcher=self.batcher,
            recovery=self.recovery,
            bans=self.bans,
            records=records,
            fence=lambda: self.batcher.flushed_through_now(skip_parked=True),
            clock=self._clock,
            profiles=self.player_profiles,
        )
        await self.bans.start()
        await self.batcher.start()

    async def _stop_components(self) -> None:
        """Drain the write buffer into the history (nothing may be lost), disconnect."""
        lost = await self.batcher.close(WAIT)
        await self.bans.stop()
        await self.ranking.close()
        assert lost == 0, f"{lost} acknowledged events never reached the history"

    # The clock

    def _clock(self) -> float:
        return self.moment.timestamp()

    def _move_clock(self, moment: datetime) -> None:
        assert moment >= self.moment
        self.moment = moment
        for board in BOARDS:
            periods = self.periods.setdefault(board.id, [])
            period = board.period_at(moment)
            if not periods or periods[-1] != period:
                periods.append(period)

    def _current(self, board: str) -> str:
        return self.periods[board][-1]

    def _pick_period(self, board: str, choice: int) -> str | None:
        """0: current (asked as the default period, None), 1: previous (when there is one),
        more: any earlier or untouched one."""
        if choice == 0:
            return None
        options = [*reversed(self.periods[board]), UNTOUCHED_PERIODS[board]]
        return options[choice % len(options)]

    @initialize(start=st.sampled_from(STARTS))
    def start_clock(self, start: datetime) -> None:
        self.moment = start
        self.periods = {}
        self._move_clock(start)

    @rule(kind=st.sampled_from(("minutes", "day", "month")), amount=st.integers(0, 23))
    def advance_clock(self, kind: str, amount: int) -> None:
        """Move on: a little (may cross midnight), one day, or into the next month."""
        if kind == "minutes":
            moment = self.moment + timedelta(minutes=1 + 13 * amount)
        elif kind == "day":
            moment = self.moment + timedelta(days=1, minutes=amount)
        else:
            first = self.moment.replace(day=28, hour=0, minute=0) + timedelta(days=4)
            moment = first.replace(day=1) + timedelta(hours=amount)
        self._move_clock(moment)

    # Writes

    @rule(request=valid_requests)
    def increment_one(self, request: IncrementRequest) -> None:
        self._increment(request)

    @rule(requests=st.lists(valid_requests, min_size=1, max_size=MAX_BATCH))
    def increment_batch(self, requests: list[IncrementRequest]) -> None:
        self._increment(*requests)

    @precondition(lambda self: bool(self.sent))
    @rule(picks=st.lists(st.integers(min_value=0), min_size=1, max_size=4))
    def replay(self, picks: list[int]) -> None:
        """Send earlier requests again (a client retrying), in the current period."""
        self._increment(*(self.sent[pick % len(self.sent)] for pick in picks))

    @rule(
        writer=st.sampled_from(WRITERS),
        step=st.integers(-2, 3),
        requests=st.lists(valid_requests, min_size=1, max_size=4),
    )
    def writer_call(self, writer: str, step: int, requests: list[IncrementRequest]) -> None:
        """A writer's call (idempotency per writer): usually the next sequence, sometimes
        one further (a gap) or an old one (a stale call)."""
        sequence = max(0, self.last_sequence.get(writer, -1) + step)
        self.last_sequence[writer] = max(sequence, self.last_sequence.get(writer, -1))
        self._increment(*requests, writer=(writer, sequence))

    @precondition(lambda self: bool(self.writer_calls))
    @rule(pick=st.integers(min_value=0))
    def writer_retry(self, pick: int) -> None:
        """A writer sends an earlier call again, same sequence (a retry), in the current period."""
        writer, sequence, requests = self.writer_calls[pick % len(self.writer_calls)]
        self._increment(*requests, writer=(writer, sequence))

    @rule(requests=st.lists(valid_requests, min_size=2, max_size=6))
    def increment_concurrently(self, requests: list[IncrementRequest]) -> None:
        """Single increments all at once, like concurrent requests to one instance.

        The stores pick the order, so each gets a fresh event id (or none) and a small
        delta, and what is checked does not depend on the order: every one applies, and
        the totals afterwards. Right after a loss they all meet the same rebuild.
        """
        concurrent = [
            request._replace(
                delta=max(-5, min(5, request.delta)),
                event_id=None if request.event_id is None else f"c{next(self._fresh_ids)}",
            )
            for request in requests
            if request.username not in self.model.banned  # each would fail on its own
        ]
        if not concurrent:
            return
        increments = [self._model_increment(request) for request in concurrent]
        reach: dict[tuple[Key, str], int] = {}
        for increment in increments:
            player = (increment.key, increment.username)
            if player not in reach:
                totals = self.model.scores.get(increment.key, {})
                reach[player] = abs(totals.get(increment.username, 0))
            reach[player] += abs(increment.delta)
        if max(reach.values()) > MAX_EXACT_SCORE:  # whether it fits would depend on the order
            self._increment(*concurrent)
            return
        assert self.model.apply(increments) is not None
        outcomes = self._run(self._concurrently(concurrent))
        assert all(outcome.applied for outcome in outcomes)
        self.sent.extend(request for request in concurrent if request.event_id is not None)
        for board in sorted({request.board for request in concurrent}):
            self._run(self._compare_period(board, self._current(board)))

    async def _concurrently(self, requests: Sequence[IncrementRequest]) -> list[IncrementOutcome]:
        answers = await asyncio.gather(*(self.service.increment([r]) for r in requests))
        return [outcome for [outcome] in answers]

    @rule(
        requests=st.lists(valid_requests, max_size=MAX_BATCH - 1),
        bad=invalid_requests,
        position=st.integers(0, MAX_BATCH - 1),
        size=st.sampled_from(("one invalid item", "empty", "too many")),
    )
    def increment_refused(
        self,
        requests: list[IncrementRequest],
        bad: tuple[IncrementRequest, ErrorCode, str],
        position: int,
        size: str,
    ) -> None:
        """A batch with one invalid item, or of a bad size: refused, nothing changes."""
        if size == "empty":
            self._refused([], BAD)
        elif size == "too many":
            filler = IncrementRequest(username="a", delta=1, board="global", event_id=None)
            self._refused([*requests, *[filler] * (MAX_BATCH + 1)][: MAX_BATCH + 1], BAD)
        else:
            bad_request, code, field = bad
            batch = list(requests)
            at = min(position, len(batch))
            batch.insert(at, bad_request)
            refusal = self.model.refusal(batch, at, field, code)
            assert refusal is not None
            self._refused(batch, refusal)

    def _increment(
        self, *requests: IncrementRequest, writer: tuple[str, int] | None = None
    ) -> None:
        refusal = self.model.refusal(requests)
        if refusal is not None:  # a banned player
            self._refused(requests, refusal, writer)
            return
        increments = [self._model_increment(request) for request in requests]
        expected = self.model.apply(increments, writer)
        if expected is None:  # a total would leave the exact range
            self._refused(requests, BAD, writer)
            return
        writer_id, sequence = (None, None) if writer is None else writer
        outcomes = self._run(self.service.increment(requests, writer_id, sequence))
        if writer is not None:
            self.writer_calls.append((*writer, list(requests)))
        assert len(outcomes) == len(requests)
        for request, outcome, want in zip(requests, outcomes, expected, strict=True):
            applied = outcome.increment
            assert (applied.board, applied.period, applied.username, applied.delta) == (
                request.board,
                self._current(request.board),
                request.username,
                request.delta,
            )
            if request.event_id is None:
                assert not applied.client_event_id
                assert applied.event_id.startswith("~")
            else:
                assert applied.client_event_id
                assert applied.event_id == request.event_id
            got = Standing(
                outcome.applied,
                outcome.score,
                outcome.rank,
                outcome.previous_score,
                outcome.previous_rank,
            )
            assert got == want, f"{request}: answered {got}, the model says {want}"
        self.sent.extend(request for request in requests if request.event_id is not None)

    def _model_increment(self, request: IncrementRequest) -> ModelIncrement:
        return ModelIncrement(
            (request.board, self._current(request.board)),
            request.username,
            request.delta,
            request.event_id,
        )

    def _refused(
        self,
        requests: Sequence[IncrementRequest],
        code: ErrorCode,
        writer: tuple[str, int] | None = None,
    ) -> None:
        """The batch fails with `code`, holds no buffer room, and changes nothing."""
        writer_id, sequence = (None, None) if writer is None else writer
        with pytest.raises(ApiError) as refused:
            self._run(self.service.increment(requests, writer_id, sequence))
        assert refused.value.code is code, refused.value.message
        assert self.batcher.reserved == 0
        for board in sorted({request.board for request in requests} & set(BOARD_IDS)):
            self._run(self._compare_period(board, self._current(board)))

    # Moderation

    @rule(username=usernames, board=boards, choice=period_choices)
    def remove_player(self, username: str, board: str, choice: int) -> None:
        """removePlayer: off one period, the players below move up; a later score starts
        afresh."""
        period = self._pick_period(board, choice)
        key = (board, period or self._current(board))
        expected = self.model.remove(key, username)
        removal = self._run(self.moderation.remove(username, board, period))
        assert (removal.rankings_changed, removal.events_deleted) == (expected, 0)
        self._run(self._compare_period(*key))

    @precondition(lambda self: any(self.model.scores.values()))
    @rule(data=st.data())
    def remove_scored_player(self, data: st.DataObject) -> None:
        """removePlayer of a player that has a score (the rule above mostly finds none)."""
        key = data.draw(st.sampled_from(sorted(k for k, v in self.model.scores.items() if v)))
        username = data.draw(st.sampled_from(sorted(self.model.scores[key])))
        board, period = key
        asked = None if period == self._current(board) else period
        assert self.model.remove(key, username) == 1
        removal = self._run(self.moderation.remove(username, board, asked))
        assert (removal.rankings_changed, removal.events_deleted) == (1, 0)
        self._run(self._compare_period(*key))

    @rule(username=usernames)
    def ban_player(self, username: str) -> None:
        """banPlayer: hidden everywhere, writes refused (a period not loaded just then has
        nothing live to take the player off: its rebuild leaves it out)."""
        shown = self.model.ban(username)
        removal = self._run(self.moderation.ban(username, "cheating"))
        assert removal.rankings_changed <= shown
        assert removal.events_deleted == 0
        self._run(self._compare_everything())

    @rule(username=usernames)
    def unban_player(self, username: str) -> None:
        """unbanPlayer: the history before the ban shows again (not what a removal took)."""
        expected = self.model.unban(username)
        assert self._run(self.moderation.unban(username)) is expected
        self._run(self._compare_everything())

    @rule(username=usernames)
    def erase_player(self, username: str) -> None:
        """erasePlayer: gone everywhere, its event ids free; every history row counted;
        a second erasure finds nothing."""
        shown, rows = self.model.erase(username)
        removal = self._run(self.moderation.erase(username))
        assert removal.events_deleted == rows
        assert removal.rankings_changed <= shown
        again = self._run(self.moderation.erase(username))
        assert (again.rankings_changed, again.events_deleted) == (0, 0)
        assert self._run(self.moderation.ban_record(username)) is None
        self._run(self._compare_everything())

    # Reads

    @rule(
        kind=st.sampled_from(("top", "player", "neighborhood", "player_count")),
        board=boards,
        choice=period_choices,
        username=usernames,
        limit=limits,
        offset=offsets,
        radius=radii,
    )
    def read(
        self,
        kind: str,
        board: str,
        choice: int,
        username: str,
        limit: int,
        offset: int,
        radius: int,
    ) -> None:
        """One read of the current, the previous, an older or an untouched period."""
        period = self._pick_period(board, choice)
        model_period = period or self._current(board)
        got: object
        want: object
        if kind == "top":
            got = self._run(self.service.top(board, period, limit, offset))
            want = self.model.standings(board, model_period)[offset : offset + limit]
        elif kind == "player":
            got = self._run(self.service.player(board, period, username))
            want = self.model.player(board, model_period, username)
        elif kind == "neighborhood":
            got = self._run(self.service.neighborhood(board, period, username, radius))
            want = self.model.neighborhood(board, model_period, username, radius)
        else:
            got = self._run(self.service.player_count(board, period))
            want = len(self.model.standings(board, model_period))
        assert got == want, f"{kind} of {board}/{model_period}: {got} != model {want}"

    @rule(bad=st.sampled_from(BAD_READS))
    def read_invalid(self, bad: BadRead) -> None:
        with pytest.raises(ApiError) as refused:
            self._run(bad.read(self.service))
        assert refused.value.code is bad.code, f"{bad.label}: {refused.value.message}"

    @rule()
    def read_everything(self) -> None:
        self._run(self._compare_everything())

    async def _compare_period(self, board: str, period: str) -> None:
        want = self.model.standings(board, period)
        where = f"{board}/{period}"
        assert await self.service.top(board, period, 100) == want, where
        assert await self.service.player_count(board, period) == len(want), where

    async def _compare_everything(self) -> None:
        for board in BOARD_IDS:
            for period in [*self.periods[board], UNTOUCHED_PERIODS[board]]:
                await self._compare_period(board, period)
                for username in USERNAMES:
                    want = self.model.player(board, period, username)
                    got = await self.service.player(board, period, username)
                    assert got == want, f"{board}/{period} {username}"

    # Player reads (#14): named players, filled neighbourhoods, paging, topPercent

    @rule(
        board=boards,
        choice=period_choices,
        names=st.lists(usernames, min_size=1, max_size=len(USERNAMES), unique=True),
        radius=st.integers(min_value=0, max_value=4),
    )
    def read_players(self, board: str, choice: int, names: list[str], radius: int) -> None:
        """Named players and every player's filled neighbourhood, with topPercent."""
        period = self._pick_period(board, choice)
        model_period = period or self._current(board)
        count = len(self.model.standings(board, model_period))
        got = self._run(self.service.players(board, period, names))
        assert got == self.model.players(board, model_period, names), (board, model_period)
        for username in USERNAMES:
            filled = self._run(self.service.neighborhood(board, period, username, radius, True))
            want = self.model.neighborhood(board, model_period, username, radius, True)
            assert filled == want, (board, model_period, username, radius)
            got += filled
        for player in got:
            assert player.top_percent == 100 * player.rank / count, player

    @rule(
        board=boards,
        choice=period_choices,
        first=st.integers(min_value=1, max_value=4) | st.just(100),
        moves=st.lists(valid_requests, max_size=6),
    )
    def page_through(
        self, board: str, choice: int, first: int, moves: list[IncrementRequest]
    ) -> None:
        """Page the whole ranking with cursors while other increments land between the
        pages: every player the moves did not touch is seen exactly once, and without
        moves the pages are the model's standings."""
        period = self._pick_period(board, choice)
        model_period = period or self._current(board)
        touched = {move.username for move in moves if move.board == board}
        seen: list[RankedPlayer] = []
        after: str | None = None
        pending = list(moves)
        while True:
            page = self._run(self.service.ranking(board, period, first, after))
            assert len(page.players) <= first
            seen += page.players
            if not page.has_next:
                break
            after = page.cursors[-1]
            if pending:
                self._increment(pending.pop())
        for move in pending:
            self._increment(move)
        everybody = self.model.standings(board, model_period)
        if not touched or model_period != self._current(board):
            assert seen == everybody, f"{board}/{model_period}"
            return
        unchanged = [player.username for player in seen if player.username not in touched]
        assert sorted(unchanged) == sorted(
            player.username for player in everybody if player.username not in touched
        )
        assert len(unchanged) == len(set(unchanged))

    @rule(
        board=boards,
        cursor=st.sampled_from(("", "x", "bm90IGpzb24", "WzEsMiwzXQ", "A" * 600)),
    )
    def page_with_a_bad_cursor(self, board: str, cursor: str) -> None:
        with pytest.raises(ApiError) as refused:
            self._run(self.service.ranking(board, None, 10, cursor))
        assert refused.value.code is BAD, refused.value.message

    # Profiles

    @rule(
        # Three names, so that a player's profile changes again and again.
        username=st.sampled_from(USERNAMES[:3]),
        display_name=st.none() | st.sampled_from(["", "Ana", "Bo ⚔️", "x" * 64, "<b>é</b>"]),
        metadata=st.none() | st.sampled_from([{}, {"c": "FR"}, {"a": [1, {"b": None}]}]),
    )
    def set_profile(
        self, username: str, display_name: str | None, metadata: dict[str, Any] | None
    ) -> None:
        if username in self.model.banned:
            with pytest.raises(ApiError) as refused:
                self._run(self.service.set_profile(username, display_name, metadata))
            assert refused.value.code is FORBIDDEN, refused.value.message
            return
        assert self._run(self.service.set_profile(username, display_name, metadata)) is True
        text = None if metadata is None else orjson.dumps(metadata).decode()
        self.model.set_profile(username, display_name, text)

    @rule(
        username=usernames,
        display_name=st.sampled_from(["x" * 65, "a\u202eb", "\n", " "]) | st.none(),
        metadata=st.sampled_from([[1], "x", {"a": {"b": {"c": {"d": {"e": 1}}}}}]) | st.none(),
    )
    def set_profile_refused(self, username: str, display_name: str | None, metadata: Any) -> None:
        if display_name is None and metadata is None:
            return
        with pytest.raises(ApiError) as refused:
            self._run(self.service.set_profile(username, display_name, metadata))
        banned = username in self.model.banned  # checked before the fields
        assert refused.value.code is (FORBIDDEN if banned else BAD), refused.value.message
        self.read_profiles()

    @rule()
    def read_profiles(self) -> None:
        """Every player's profile, as one answer would fetch them."""
        got = self._run(self.service.profiles(list(USERNAMES)))
        assert got == {name: self.model.profiles.get(name, NO_PROFILE) for name in USERNAMES}

    # Losses

    @precondition(lambda self: self.backend is Backend.REDIS_MARIADB)
    @rule(check_at_once=st.booleans())
    def redis_loses_everything(self, check_at_once: bool) -> None:
        """Redis comes back empty (after the buffer reached MySQL): every period is rebuilt.

        Without the check at once, the next writes and reads meet the lost periods.
        """
        self._run(self._lose_redis())
        if check_at_once:
            self._run(self._compare_everything())
            self.read_profiles()  # the profile cache went too: refilled from the table

    async def _lose_redis(self) -> None:
        await self._flushed()
        await delete_prefix(self.prefix)
        await self._writers_rebuilt()

    async def _writers_rebuilt(self) -> None:
        """The periods writers wrote to are rebuilt now, so that what their rebuild restores
        (each writer's highest sequence in the history) is the model's at this moment:
        a later erasure deletes rows, which a lazier rebuild would see."""
        self.model.lose_writers()
        for board, period in self.model.writer_rows:
            await self.recovery.ensure_loaded(board, period)

    @rule(check_at_once=st.booleans())
    def restart(self, check_at_once: bool) -> None:
        """The process stops (draining its buffer) and starts again.

        Embedded: the rankings were in memory, so every period is rebuilt from SQLite.
        Redis: the rankings are still there.
        """
        self._run(self._restart())
        if check_at_once:
            self._run(self._compare_everything())
            self.read_profiles()

    async def _restart(self) -> None:
        await self._stop_components()
        await self._start_components()
        if self.backend is Backend.EMBEDDED_SQLITE:  # the rankings were in memory
            await self._writers_rebuilt()

    async def _flushed(self) -> None:
        deadline = time.monotonic() + WAIT
        while self.batcher.depth or self.batcher.reserved:
            assert time.monotonic() < deadline, "the write buffer did not flush"
            await asyncio.sleep(FLUSH_INTERVAL / 4)

    @invariant()
    def no_room_held(self) -> None:
        assert self.batcher.reserved == 0
        assert self.batcher.healthy


class RedisMariaDBMachine(LeaderboardMachine):
    backend = Backend.REDIS_MARIADB


class EmbeddedSQLiteMachine(LeaderboardMachine):
    backend = Backend.EMBEDDED_SQLITE


@pytest.mark.timeout(900)  # minutes on a loaded machine, not a hang
def test_redis_and_mariadb_follow_the_model() -> None:
    run_state_machine_as_test(RedisMariaDBMachine, settings=SETTINGS)


@pytest.mark.timeout(900)  # minutes on a loaded machine, not a hang
def test_embedded_and_sqlite_follow_the_model() -> None:
    run_state_machine_as_test(EmbeddedSQLiteMachine, settings=SETTINGS)


async def test_default_period_follows_the_injected_clock(sqlite_database_url: str) -> None:
    """Found by the machine: with a moved clock, `period=None` read another period.

    Increments go to the clock's period; a read without a period should read that one.
    """
    moment = datetime(2001, 1, 15, 12, tzinfo=UTC)  # never the real current month
    history = SqlScoreHistory(sqlite_database_url)
    await history.connect()
    await history.migrate()
    ranking = EmbeddedRankingStore(boards=BOARDS)
    batcher = WriteBatcher(history, flush_interval=FLUSH_INTERVAL)
    await batcher.start()
    service = LeaderboardService(
        ranking=ranking,
        batcher=batcher,
        recovery=RankingRecovery(ranking, history, claim_seconds=WAIT, wait_seconds=WAIT),
        boards=BOARDS,
        max_delta=MAX_DELTA,
        max_batch_increments=MAX_BATCH,
        clock=moment.timestamp,
    )
    try:
        [outcome] = await service.increment(
            [IncrementRequest(username="alice", delta=5, board="global", event_id=None)]
        )
        assert outcome.increment.period == "2001-01"
        alice = RankedPlayer(username="alice", score=5, rank=1)
        assert await service.top("global", "2001-01", 10) == [alice]
        assert await service.top("global", None, 10) == [alice]  # observed: []
    finally:
        assert await batcher.close(WAIT) == 0
        await history.close()


# Boards of every kind: rule x order x tie-break, caps (docs/boards.md)

KIND_BOARD_IDS = tuple(board.id for board in RULED_BOARDS)
KIND_USERNAMES = ("a", "Bob", "bob", "é")
KIND_VALUES = st.sampled_from(
    (*_SMALL * 4, 0, 10, 100, 101, -11, 1000, 1001, MAX_EXACT_SCORE, -MAX_EXACT_SCORE)
)
"""Small values (ties are the rule), the caps' edges, and the exact range's."""


@dataclass
class KindModel:
    """Every (board, period) of the boards of every kind: a `PeriodModel` each, and the
    client event ids applied there, bound to (username, value)."""

    periods: dict[Key, PeriodModel] = dataclasses.field(default_factory=dict)
    seen: dict[Key, dict[str, tuple[str, int]]] = dataclasses.field(default_factory=dict)
    rows: dict[str, int] = dataclasses.field(default_factory=dict)
    """History rows per player (applied writes and removals)."""
    banned: set[str] = dataclasses.field(default_factory=set)
    hidden: dict[Key, dict[str, tuple[int, int]]] = dataclasses.field(default_factory=dict)
    """Banned players' (kept score, instant reached), shown again by an unban."""

    def period(self, board: Board, period: str) -> PeriodModel:
        """The model of one board period."""
        return self.periods.setdefault((board.id, period), PeriodModel(board))

    def remove(self, key: Key, username: str) -> int:
        """removePlayer: off one period (a removal row when it had a score); 0 or 1."""
        model = self.periods.get(key)
        if model is None or model.remove(username) is None:
            return 0
        self.rows[username] = self.rows.get(username, 0) + 1
        return 1

    def ban(self, username: str, final: Callable[[Key], bool]) -> int:
        """Hide the player in every period but the final ones (frozen as rewarded); how
        many showed it."""
        self.banned.add(username)
        shown = 0
        for key, model in self.periods.items():
            if final(key):
                continue
            reached = model.reached.get(username, 0)
            kept = model.remove(username)
            if kept is not None:
                self.hidden.setdefault(key, {})[username] = (kept, reached)
                shown += 1
        return shown

    def unban(self, username: str, final: Callable[[Key], bool]) -> bool:
        """Show the player again as it was, but in periods that became final meanwhile
        (frozen without it); False when it was not banned."""
        if username not in self.banned:
            return False
        self.banned.discard(username)
        for key, hidden in self.hidden.items():
            if username in hidden:
                shown = hidden.pop(username)
                if not final(key):
                    model = self.periods[key]
                    model.kept[username], model.reached[username] = shown
        return True

    def erase(self, username: str) -> tuple[int, int]:
        """Forget the player: (periods that showed it, history rows deleted)."""
        self.banned.discard(username)
        shown = sum(model.remove(username) is not None for model in self.periods.values())
        for hidden in self.hidden.values():
            hidden.pop(username, None)
        for ids in self.seen.values():
            for event_id in [event_id for event_id, bound in ids.items() if bound[0] == username]:
                del ids[event_id]
        return shown, self.rows.pop(username, 0)

    def refusal(
        self, board: Board, period: str, username: str, value: int, event_id: str | None
    ) -> bool:
        """Whether the write must be refused (BAD_USER_INPUT), changing nothing."""
        ids = self.seen.get((board.id, period), {})
        if event_id is not None and event_id in ids:
            return ids[event_id] != (username, value)
        if abs(value) > MAX_EXACT_SCORE:
            return True
        old = self.period(board, period).kept.get(username)
        new = kept_score(board.update_rule, board.sort_order, old, value)
        capped = new if board.update_rule is UpdateRule.INCREMENT else value
        return (
            abs(new) > MAX_EXACT_SCORE
            or (board.min_score is not None and capped < board.min_score)
            or (board.max_score is not None and capped > board.max_score)
        )


class KindsMachine(StoresMachine):
    """The real service on boards of every rule, order, tie-break and with caps, against
    `KindModel`: each write's answer, every read, and every rank after rebuilds (Redis
    emptied, or a restart) and across a month boundary."""

    cluster_url: ClassVar[str | None] = None
    """A Redis Cluster's seed instead of the machine's Redis (every board then takes the
    per-slot path)."""

    def __init__(self) -> None:
        super().__init__("lbkinds")
        self.model = KindModel()
        self.moment = datetime(2026, 1, 31, 23, 0, tzinfo=UTC)
        self.periods_seen: set[str] = set()
        self._open_all()

    async def _start_components(self) -> None:
        self.ranking: RankingStore
        # On Redis every kind is spread over shards: the answers must not change.
        boards = SHARDED_KINDS if self.backend is Backend.REDIS_MARIADB else RULED_BOARDS
        if self.backend is Backend.REDIS_MARIADB:
            self.ranking = RedisRankingStore.from_url(
                self.cluster_url or REDIS_URL,
                key_prefix=self.prefix,
                boards=boards,
                retention=RETENTION,
                cluster=self.cluster_url is not None,
            )
        else:
            self.ranking = EmbeddedRankingStore(boards=boards)
        self.batcher = WriteBatcher(self.history, flush_interval=FLUSH_INTERVAL)
        recovery = RankingRecovery(
            self.ranking,
            self.history,
            claim_seconds=WAIT,
            wait_seconds=WAIT,
            fence=lambda: self.batcher.flushed_through_now(skip_parked=True),
            boards=boards,
        )
        # Seasons: every month that ends is frozen from the history (the boards' rules,
        # orders and tie-breaks), and its reads come from the frozen standings from then on.
        self.seasons = Seasons(
            standings=self.history.standings(),
            batcher=self.batcher,
            boards=boards,
            notices=InProcessPeriodNotices(),
            fold=recovery.fold,
            clock=lambda: self.moment.timestamp(),
        )
        records = self.history.player_records()
        self.bans = BanRegistry(records, NoNotices(), reload_seconds=WAIT)
        self.service = LeaderboardService(
            ranking=self.ranking,
            batcher=self.batcher,
            recovery=recovery,
            boards=boards,
            max_delta=MAX_DELTA,
            max_batch_increments=MAX_BATCH,
            clock=lambda: self.moment.timestamp(),
            seasons=self.seasons,
            banned=self.bans.names,
        )
        # Moderation on boards of every kind (#14): removals replayed by a rebuild.
        self.moderation = PlayerModeration(
            service=self.service,
            ranking=self.ranking,
            batcher=self.batcher,
            recovery=recovery,
            bans=self.bans,
            records=records,
            fence=lambda: self.batcher.flushed_through_now(skip_parked=True),
            clock=lambda: self.moment.timestamp(),
            standings=self.history.standings(),
        )
        await self.bans.start()
        await self.batcher.start()
        await self._finalize()

    async def _stop_components(self) -> None:
        lost = await self.batcher.close(WAIT)
        await self.bans.stop()
        await self.ranking.close()
        assert lost == 0, f"{lost} acknowledged events never reached the history"

    def _period(self, board: Board) -> str:
        period = board.period_at(self.moment)
        self.periods_seen.add(period)
        return period

    # Writes

    @rule(
        board_id=st.sampled_from(KIND_BOARD_IDS),
        username=st.sampled_from(KIND_USERNAMES),
        value=KIND_VALUES,
        event_id=st.none() | st.sampled_from(("e1", "e2", "e3")),
    )
    def write(self, board_id: str, username: str, value: int, event_id: str | None) -> None:
        """setScore on a BEST/LATEST board, incrementScore on an INCREMENT one."""
        self._write_checked(board_id, username, value, event_id)

    @rule(
        board_id=st.sampled_from(KIND_BOARD_IDS),
        writes=st.lists(
            st.tuples(st.sampled_from(KIND_USERNAMES), st.sampled_from(_SMALL)),
            min_size=2,
            max_size=8,
        ),
    )
    def write_many(self, board_id: str, writes: list[tuple[str, int]]) -> None:
        """Several small writes to one board in a row: ties, passes and repeated players."""
        for username, value in writes:
            self._write_checked(board_id, username, value, None)

    def _write_checked(
        self, board_id: str, username: str, value: int, event_id: str | None
    ) -> None:
        board = next(board for board in RULED_BOARDS if board.id == board_id)
        if board.update_rule is UpdateRule.INCREMENT and value == 0:
            value = 1  # a zero delta is refused before any board rule applies
        period = self._period(board)
        model = self.model.period(board, period)
        if username in self.model.banned:
            with pytest.raises(ApiError) as forbidden:
                self._run(self._write(board, username, value, event_id))
            assert forbidden.value.code is FORBIDDEN, forbidden.value.message
            self._run(self._compare(board, period))
            return
        if self.model.refusal(board, period, username, value, event_id):
            with pytest.raises(ApiError) as refused:
                self._run(self._write(board, username, value, event_id))
            assert refused.value.code is BAD, refused.value.message
            self._run(self._compare(board, period))
            return
        seen = self.model.seen.setdefault((board.id, period), {})
        replay = event_id is not None and event_id in seen
        previous = model.kept.get(username)
        previous_rank = None if previous is None else model.rank(username)
        outcome = self._run(self._write(board, username, value, event_id))
        if replay:
            assert (outcome.applied, outcome.score) == (False, previous)
            assert outcome.rank == model.rank(username)
            return
        assert outcome.applied
        if board.keeps_instants:
            assert outcome.instant is not None
        self.model.rows[username] = self.model.rows.get(username, 0) + 1
        score, changed = model.write(username, value, outcome.instant)
        if event_id is not None:
            seen[event_id] = (username, value)
        got = (outcome.score, outcome.rank, outcome.previous_score, outcome.previous_rank)
        assert got == (score, model.rank(username), previous, previous_rank), board.id
        assert outcome.changed is changed

    async def _write(
        self, board: Board, username: str, value: int, event_id: str | None
    ) -> IncrementOutcome:
        if board.update_rule is UpdateRule.INCREMENT:
            [outcome] = await self.service.increment(
                [IncrementRequest(username, value, board.id, event_id)]
            )
            return outcome
        return await self.service.set_score(username, value, board.id, event_id)

    @rule(board_id=st.sampled_from(KIND_BOARD_IDS), value=st.integers(1, 5))
    def wrong_kind(self, board_id: str, value: int) -> None:
        """The other mutation than the board's: refused naming the right one."""
        board = next(board for board in RULED_BOARDS if board.id == board_id)
        wrong: Coroutine[Any, Any, object] = (
            self.service.set_score("a", value, board.id, None)
            if board.update_rule is UpdateRule.INCREMENT
            else self.service.increment([IncrementRequest("a", value, board.id, None)])
        )
        with pytest.raises(ApiError) as refused:
            self._run(wrong)
        assert refused.value.code is BAD
        want = "use incrementScore" if board.update_rule is UpdateRule.INCREMENT else "use setScore"
        assert want in refused.value.message
        self._run(self._compare(board, self._period(board)))

    @rule(hours=st.integers(1, 400))
    def advance_clock(self, hours: int) -> None:
        """Time passes, now and then into the next month (a new period): the month that
        ended is frozen (its events are all in the history first: one instance, so its
        own barrier is every instance's)."""
        self.moment += timedelta(hours=hours)
        self._run(self._finalize())

    async def _finalize(self) -> None:
        await self.batcher.flushed_through_now()
        await self.seasons.finalize_due()

    # Moderation on every kind (#14)

    @rule(
        board_id=st.sampled_from(KIND_BOARD_IDS),
        username=st.sampled_from(KIND_USERNAMES),
        past=st.booleans(),
        rebuild=st.booleans(),
    )
    def remove_player(self, board_id: str, username: str, past: bool, rebuild: bool) -> None:
        """removePlayer: off one period, those behind move up, a later write starts afresh
        (a worse BEST score counts), and a rebuild (`rebuild`: right after it, Redis emptied
        or the process restarted) replays the removal where it was made."""
        board = next(board for board in RULED_BOARDS if board.id == board_id)
        period = min(self.periods_seen) if past and self.periods_seen else self._period(board)
        if self._final((board.id, period)):
            self._refused_on_final(board, period, username)
            return
        expected = self.model.remove((board.id, period), username)
        removal = self._run(self.moderation.remove(username, board.id, period))
        assert (removal.rankings_changed, removal.events_deleted) == (expected, 0), board.id
        if rebuild:
            if self.backend is Backend.REDIS_MARIADB:
                self._run(self._lose_redis())
            else:
                self._run(self._stop_components())
                self._run(self._start_components())
        self._run(self._compare(board, period))

    @precondition(lambda self: any(model.kept for model in self.model.periods.values()))
    @rule(data=st.data(), rebuild=st.booleans())
    def remove_scored_player(self, data: st.DataObject, rebuild: bool) -> None:
        """removePlayer of a player that has a score (the rule above often finds none),
        then the same checks, a rebuild right after included."""
        keys = sorted(key for key, model in self.model.periods.items() if model.kept)
        board_id, period = data.draw(st.sampled_from(keys))
        username = data.draw(st.sampled_from(sorted(self.model.periods[(board_id, period)].kept)))
        board = next(board for board in RULED_BOARDS if board.id == board_id)
        if self._final((board_id, period)):
            self._refused_on_final(board, period, username)
            return
        assert self.model.remove((board_id, period), username) == 1
        removal = self._run(self.moderation.remove(username, board_id, period))
        assert (removal.rankings_changed, removal.events_deleted) == (1, 0), board_id
        if rebuild:
            if self.backend is Backend.REDIS_MARIADB:
                self._run(self._lose_redis())
            else:
                self._run(self._stop_components())
                self._run(self._start_components())
        self._run(self._compare(board, period))

    @rule(username=st.sampled_from(KIND_USERNAMES))
    def ban_player(self, username: str) -> None:
        """banPlayer: off every period of every kind, writes FORBIDDEN."""
        shown = self.model.ban(username, self._final)
        removal = self._run(self.moderation.ban(username, None))
        assert removal.rankings_changed <= shown
        self._run(self._compare_tops())

    @rule(username=st.sampled_from(KIND_USERNAMES))
    def unban_player(self, username: str) -> None:
        """unbanPlayer: each period shows the player as before the ban, EARLIEST places
        included (kept score and instant replayed from the history)."""
        expected = self.model.unban(username, self._final)
        assert self._run(self.moderation.unban(username)) is expected
        self._run(self._compare_tops())

    def _final(self, key: Key) -> bool:
        """Whether a board period has ended, so is frozen (`_finalize` runs on every clock
        step); boards that never reset have no final period."""
        board = next(board for board in RULED_BOARDS if board.id == key[0])
        return board.reset is not ResetPeriod.NEVER and key[1] < board.period_at(self.moment)

    def _refused_on_final(self, board: Board, period: str, username: str) -> None:
        """removePlayer on a final period: BAD_USER_INPUT, its standings unchanged."""
        with pytest.raises(ApiError) as refused:
            self._run(self.moderation.remove(username, board.id, period))
        assert refused.value.code is BAD, refused.value.message
        self._run(self._compare(board, period))

    @rule(username=st.sampled_from(KIND_USERNAMES))
    def erase_player(self, username: str) -> None:
        """erasePlayer: gone from every period (final ones too), every history row counted."""
        shown, rows = self.model.erase(username)
        removal = self._run(self.moderation.erase(username))
        assert removal.events_deleted == rows
        assert removal.rankings_changed <= shown
        self._run(self._compare_tops())

    # Reads

    async def _compare(self, board: Board, period: str) -> None:
        want = self.model.period(board, period).standings()
        where = f"{board.id}/{period}"
        # A month that ended is read from its frozen standings, whatever the board's kind.
        served = next(kind for kind in self.service.boards if kind.id == board.id)
        ended = period < board.period_at(self.moment)
        assert (await self.seasons.frozen(served, period) is not None) is ended, where
        assert await self.service.top(board.id, period, 100) == want, where
        for player in want:
            assert await self.service.player(board.id, period, player.username) == player, where
        if want:
            middle = want[len(want) // 2].username
            position = len(want) // 2
            got = await self.service.neighborhood(board.id, period, middle, 1)
            assert got == want[max(0, position - 1) : position + 2], where
        await self._compare_player_reads(board, period, want)

    async def _compare_player_reads(
        self, board: Board, period: str, want: list[RankedPlayer]
    ) -> None:
        """players, every page of ranking, filled neighbourhoods and topPercent (#14)."""
        where = f"{board.id}/{period}"
        got = await self.service.players(board.id, period, list(KIND_USERNAMES))
        assert got == want, where
        for first in (1, 3):
            pages: list[RankedPlayer] = []
            after: str | None = None
            while True:
                page = await self.service.ranking(board.id, period, first, after)
                pages += page.players
                if not page.has_next:
                    break
                after = page.cursors[-1]
            assert pages == want, (where, first)
        if want:
            for name, window in ((want[0].username, want[:3]), (want[-1].username, want[-3:])):
                filled = await self.service.neighborhood(board.id, period, name, 1, True)
                assert filled == window, (where, name)
            for player in got:
                assert player.top_percent == 100 * player.rank / len(want), where

    @rule()
    def read_everything(self) -> None:
        self._run(self._compare_everything())

    async def _compare_everything(self) -> None:
        for board in RULED_BOARDS:
            for period in sorted(self.periods_seen):
                await self._compare(board, period)

    async def _compare_tops(self) -> None:
        """Every period's top against the model (what a moderation step over every board
        checks; `read_everything` and the losses check every read)."""
        for board in RULED_BOARDS:
            for period in sorted(self.periods_seen):
                want = self.model.period(board, period).standings()
                got = await self.service.top(board.id, period, 100)
                assert got == want, f"{board.id}/{period}"

    # Losses

    @precondition(lambda self: self.backend is Backend.REDIS_MARIADB)
    @rule()
    def redis_loses_everything(self) -> None:
        """Redis comes back empty: every period is rebuilt from MariaDB, instants included."""
        self._run(self._lose_redis())
        self._run(self._compare_everything())

    async def _lose_redis(self) -> None:
        deadline = time.monotonic() + WAIT
        while self.batcher.depth or self.batcher.reserved:
            assert time.monotonic() < deadline, "the write buffer did not flush"
            await asyncio.sleep(FLUSH_INTERVAL / 4)
        await self._delete_keys()

    async def _delete_keys(self) -> None:
        if self.cluster_url is not None:
            await delete_cluster_keys(self.cluster_url, self.prefix)
        else:
            await delete_prefix(self.prefix)

    @rule()
    def restart(self) -> None:
        """The process restarts (embedded: every period is rebuilt from SQLite)."""
        self._run(self._stop_components())
        self._run(self._start_components())
        self._run(self._compare_everything())


class RedisMariaDBKindsMachine(KindsMachine):
    backend = Backend.REDIS_MARIADB


class EmbeddedSQLiteKindsMachine(KindsMachine):
    backend = Backend.EMBEDDED_SQLITE


# Every kind sharded, on real servers: minutes on a loaded machine, not a hang.
@pytest.mark.timeout(900)
def test_every_kind_of_board_on_redis_and_mariadb_follows_the_model() -> None:
    run_state_machine_as_test(RedisMariaDBKindsMachine, settings=SETTINGS)


@pytest.mark.timeout(900)
def test_every_kind_of_board_on_a_redis_cluster_follows_the_model(
    redis_cluster: PrivateRedisCluster,
) -> None:
    class ClusterKindsMachine(RedisMariaDBKindsMachine):
        cluster_url = redis_cluster.url()

    run_state_machine_as_test(ClusterKindsMachine, settings=SETTINGS)


@pytest.mark.timeout(900)
def test_every_kind_of_board_embedded_follows_the_model() -> None:
    run_state_machine_as_test(EmbeddedSQLiteKindsMachine, settings=SETTINGS)
