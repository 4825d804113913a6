"""The Locust scenarios without Locust: what each runs, its load shape, its requests, its checks.

`benchmarks/locustfile.py` turns these into Locust users and one load shape;
`benchmarks/locust_run.py` starts the environment and Locust. Nothing here imports Locust
(importing it monkey-patches the process with gevent), so the test suite can check the
definitions in its own process.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from benchmarks import documents


@dataclass(frozen=True)
class Scenario:
    """One Locust scenario: its board, its user classes and its defaults."""

    name: str
    board: str
    """The benchmark board it writes or reads (reset `never`, so its count check is isolated)."""
    user_classes: tuple[str, ...]
    """Names of the locustfile's user classes it runs."""
    summary: str
    writes: bool
    """Whether it increments scores (then Redis = MySQL = acknowledged is checked afterwards)."""
    users: int
    seconds: float


SCENARIOS: dict[str, Scenario] = {
    scenario.name: scenario
    for scenario in (
        Scenario(
            name="spike",
            board="spike",
            user_classes=("SpikeUser", "SpikeTrickleUser"),
            summary=(
                "a trickle (one user, 10 calls/s), idle, then every user at once, closed loop "
                "(half incrementScore, half topPlayers), held, then back to the trickle"
            ),
            writes=True,
            users=200,
            seconds=60,
        ),
        Scenario(
            name="write-stress",
            board="write",
            user_classes=("WriteStressUser",),
            summary="sustained incrementScore, closed loop, on 10,000 players",
            writes=True,
            users=64,
            seconds=180,
        ),
        Scenario(
            name="read",
            board="read",
            user_classes=("ReadUser",),
            summary="topPlayers(limit: 10), player, neighborhood(radius: 5) on 10,000 players",
            writes=False,
            users=64,
            seconds=60,
        ),
        Scenario(
            name="ingest",
            board="ingest",
            user_classes=("IngestUser",),
            summary="incrementScores with 500 increments per call on 100,000 players",
            writes=True,
            users=8,
            seconds=60,
        ),
        Scenario(
            name="subscriptions",
            board="fanout",
            user_classes=("RankSubscriberUser", "TopSubscriberUser", "FanOutWriterUser"),
            summary=(
                "WebSocket subscribers on rankChanged (one per watched player) and "
                "topPlayersChanged(limit: 10) while writers increment at a fixed pace; "
                "ack→delivery latency as custom events"
            ),
            writes=True,
            users=200,
            seconds=60,
        ),
    )
}

DOCUMENTS: dict[str, str] = {
    "incrementScore": documents.INCREMENT,
    "incrementScores": documents.INCREMENTS,
    "topPlayers": documents.TOP,
    "player": documents.PLAYER,
    "neighborhood": documents.NEIGHBORHOOD,
    "rankChanged": documents.RANK_CHANGED,
    "topPlayersChanged": documents.TOP_CHANGED,
}
"""Every GraphQL document the Locust users send, by the request name they report."""

BATCH_SIZE = 500
"""Increments per incrementScores call of the ingest scenario."""
TOP_LIMIT = 10
"""The `limit` of the topPlayersChanged subscription (the TOP_CHANGED document)."""

# Player pools (usernames are prefix + number). The runner seeds the read and the
# subscription pools through the service before Locust starts.
SPIKE_PLAYERS = ("ls", 10_000)
WRITE_PLAYERS = ("lw", 10_000)
READ_PLAYERS = ("lr", 10_000)
INGEST_PLAYERS = ("li", 100_000)
WATCHED_PLAYERS = ("lf", 5_000)
"""One per rankChanged subscriber (the 5,000 WebSocket connections a service allows)."""
OTHER_PLAYERS = ("lo", 2_000)
TOP_PLAYERS = ("lt", 20)
"""Start above everybody and get large deltas, so the top 10 keeps changing."""

SUBSCRIPTION_WRITERS = 4
SUBSCRIPTION_OVERLAYS = 5
WRITER_CALLS_PER_SECOND = 25.0
"""Per writer user: 4 writers send 100 incrementScore calls per second together."""
DELIVERY_GRACE_SECONDS = 2.0
"""An acknowledged change not delivered after this long when the test stops is missed."""


def usernames(pool: tuple[str, int]) -> list[str]:
    """Every username of a player pool."""
    prefix, size = pool
    return [f"{prefix}{number}" for number in range(size)]


def seed_scores(scenario: str, seed: int = 5) -> list[tuple[str, int]]:
    """(username, score) to give players before a scenario starts; empty when none."""
    chooser = random.Random(seed)
    if scenario == "read":
        return [(name, chooser.randint(1, 1_000_000)) for name in usernames(READ_PLAYERS)]
    if scenario == "subscriptions":
        scores = [
            (name, chooser.randint(1, 500_000))
            for name in usernames(WATCHED_PLAYERS) + usernames(OTHER_PLAYERS)
        ]
        return scores + [
            (name, 600_000 + chooser.randint(0, 100_000)) for name in usernames(TOP_PLAYERS)
        ]
    return []


# Load shape


@dataclass(frozen=True)
class Stage:
    """Users to run until `until` seconds after the start, spawned at `spawn_rate` per second."""

    until: float
    users: int
    spawn_rate: float
    user_classes: tuple[str, ...] | None = None
    """The user classes of the stage; None: all of the scenario's."""


SPIKE_TRICKLE_SECONDS = 3.0
SPIKE_IDLE_SECONDS = 2.0
SPIKE_PEAK_SHARE = 0.6
"""Share of the time after the trickle and the idle pause that the peak is held."""
TRICKLE_CALLS_PER_SECOND = 10.0
"""The spike's trickle before and after the peak: one user at this pace."""
STEADY_RAMP_SECONDS = 2.0


def stages(scenario: str, users: int, seconds: float) -> list[Stage]:
    """The load over time of a scenario with `users` at the peak and `seconds` in all."""
    if users < 1 or seconds <= 0:
        raise ValueError("a scenario needs at least one user and a positive run time")
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; choose from {', '.join(SCENARIOS)}")
    if scenario == "spike":
        # Idle to peak at once: every user is started in the same second, the way a
        # tournament start or a push notification brings them.
        start = SPIKE_TRICKLE_SECONDS + SPIKE_IDLE_SECONDS
        if seconds < start + 5:
            raise ValueError(f"the spike needs at least {start + 5:.0f} s")
        peak_until = start + SPIKE_PEAK_SHARE * (seconds - start)
        trickle, peak = ("SpikeTrickleUser",), ("SpikeUser",)
        # Every change of user class goes through 0 users: Locust's dispatcher then never
        # has to choose which class's users to stop.
        return [
            Stage(SPIKE_TRICKLE_SECONDS, users=1, spawn_rate=1.0, user_classes=trickle),
            Stage(start, users=0, spawn_rate=1.0, user_classes=trickle),
            Stage(peak_until, users=users, spawn_rate=float(users), user_classes=peak),
            Stage(peak_until + 1, users=0, spawn_rate=float(users), user_classes=peak),
            Stage(seconds, users=1, spawn_rate=1.0, user_classes=trickle),
        ]
    # Steady scenarios: ramp up over about two seconds, then hold. (Locust's --spawn-rate
    # cannot be told from its default of 1 once parsed, so the shape does not read it.)
    return [Stage(until=seconds, users=users, spawn_rate=max(1.0, users / STEADY_RAMP_SECONDS))]


def stage_at(plan: Sequence[Stage], elapsed: float) -> Stage | None:
    """The stage running `elapsed` seconds after the start; None once the plan is over."""
    for stage in plan:
        if elapsed < stage.until:
            return stage
    return None


# Requests


def request_body(name: str, variables: dict[str, Any]) -> bytes:
    """The POST body of one of the DOCUMENTS with its variables."""
    return documents.body(DOCUMENTS[name], variables)


def answered(status: int, body: bytes) -> bool:
    """Whether a GraphQL answer is a success: 200 and no errors."""
    return status == 200 and b'"errors"' not in body


@dataclass(frozen=True)
class Batch:
    """A ready incrementScores body and what it adds."""

    body: bytes
    events: int
    total: int


def batches(board: str, *, count: int, size: int = BATCH_SIZE, seed: int = 11) -> list[Batch]:
    """Ready incrementScores bodies (built once: JSON for 500 items is not free in Python)."""
    chooser = random.Random(seed)
    players = usernames(INGEST_PLAYERS)
    ready = []
    for _ in range(count):
        deltas = [chooser.randint(1, 9) for _ in range(size)]
        items = [
            {"username": chooser.choice(players), "delta": delta, "board": board}
            for delta in deltas
        ]
        ready.append(Batch(request_body("incrementScores", {"i": items}), size, sum(deltas)))
    return ready


@dataclass
class AckCounter:
    """Increments acknowledged by the service (and what they added), for the count check."""

    events: int = 0
    total: int = 0
    failed_calls: int = 0
    """Write calls not acknowledged: errors, timeouts, broken connections."""

    def acknowledge(self, events: int, total: int) -> None:
        """Count an acknowledged write call."""
        self.events += events
        self.total += total

    def as_dict(self) -> dict[str, int]:
        """JSON-ready."""
        return {"events": self.events, "total": self.total, "failed_calls": self.failed_calls}


def parse_update(body: bytes) -> tuple[int, int]:
    """(score, rank) of an incrementScore answer."""
    update = orjson.loads(body)["data"]["incrementScore"]
    return int(update["score"]), int(update["rank"])


# Ack → delivery


@dataclass(frozen=True)
class Delivery:
    """One acknowledged change seen by one subscriber, `latency` seconds after the ack."""

    kind: str
    """`rankChanged` or `topPlayersChanged`."""
    latency: float


@dataclass
class _Watch:
    kind: str
    username: str | None
    limit: int
    pending: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    """username → acknowledged (score, at) not shown yet."""
    shown: dict[str, int] = field(default_factory=dict)
    """username → highest score shown so far."""


class DeliveryTracker:
    """Matches acknowledged increments with the subscription messages that show them.

    Scores only grow, so a message showing a player with score S delivers every
    acknowledged increment of that player with score ≤ S (the service may coalesce
    changes). A message may beat the HTTP answer: such an increment counts as delivered
    with latency 0. Times are `time.perf_counter()` of one process.
    """

    def __init__(self) -> None:
        self._watches: dict[int, _Watch] = {}
        self._player_watches: dict[str, set[int]] = {}
        self._top_watches: set[int] = set()
        self._next_id = 0

    def _add(self, watch: _Watch) -> int:
        self._next_id += 1
        self._watches[self._next_id] = watch
        return self._next_id

    def watch_player(self, username: str) -> int:
        """A rankChanged subscriber of `username` that is live (its first message came)."""
        watch_id = self._add(_Watch("rankChanged", username, 0))
        self._player_watches.setdefault(username, set()).add(watch_id)
        return watch_id

    def watch_top(self, limit: int) -> int:
        """A topPlayersChanged(limit) subscriber that is live."""
        watch_id = self._add(_Watch("topPlayersChanged", None, limit))
        self._top_watches.add(watch_id)
        return watch_id

    def unwatch(self, watch_id: int) -> None:
        """Forget a subscriber (it stopped)."""
        watch = self._watches.pop(watch_id, None)
        if watch is None:
            return
        if watch.username is not None:
            watchers = self._player_watches.get(watch.username, set())
            watchers.discard(watch_id)
            if not watchers:
                self._player_watches.pop(watch.username, None)
        self._top_watches.discard(watch_id)

    def watched_players(self) -> list[str]:
        """Usernames with a live rankChanged subscriber."""
        return list(self._player_watches)

    def acknowledged(self, username: str, score: int, rank: int, at: float) -> list[Delivery]:
        """An increment was acknowledged; the deliveries that already happened (latency 0)."""
        interested = set(self._player_watches.get(username, ()))
        interested |= {
            watch_id for watch_id in self._top_watches if rank <= self._watches[watch_id].limit
        }
        early = []
        for watch_id in interested:
            watch = self._watches[watch_id]
            if watch.shown.get(username, -1) >= score:
                early.append(Delivery(watch.kind, 0.0))
            else:
                watch.pending.setdefault(username, []).append((score, at))
        return early

    def shown(self, watch_id: int, username: str, score: int, at: float) -> list[Delivery]:
        """A subscriber's message showed `username` with `score`; the deliveries it made."""
        watch = self._watches.get(watch_id)
        if watch is None:
            return []
        if score > watch.shown.get(username, -1):
            watch.shown[username] = score
        waiting = watch.pending.get(username)
        if not waiting:
            return []
        delivered = [
            Delivery(watch.kind, max(0.0, at - acknowledged_at))
            for pending_score, acknowledged_at in waiting
            if pending_score <= score
        ]
        if delivered:
            remaining = [entry for entry in waiting if entry[0] > score]
            if remaining:
                watch.pending[username] = remaining
            else:
                del watch.pending[username]
        return delivered

    def unresolved(self, now: float, grace: float = DELIVERY_GRACE_SECONDS) -> dict[str, int]:
        """Acknowledged changes never shown: older than `grace` (missed) or recent, per kind.

        For topPlayersChanged an old one is usually superseded (the player left the top
        before the next list), not lost.
        """
        counts = {
            f"{kind} {age}": 0
            for kind in ("rankChanged", "topPlayersChanged")
            for age in ("old", "recent")
        }
        for watch in self._watches.values():
            for waiting in watch.pending.values():
                for _, acknowledged_at in waiting:
                    age = "old" if now - acknowledged_at > grace else "recent"
                    counts[f"{watch.kind} {age}"] += 1
        return counts
