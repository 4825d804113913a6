"""Locust scenarios against a running service (`python -m benchmarks.locust_run` starts one).

    locust -f benchmarks/locustfile.py --headless --host http://127.0.0.1:8000 \
        --scenario spike|write-stress|read|ingest|subscriptions -u USERS \
        [--scenario-seconds N] [--write-token T] [--acks-file PATH]

One load shape (`ScenarioShape`) runs the chosen scenario: it picks the scenario's user
classes and its load over time (`benchmarks.locust_scenarios.stages`): the spike goes from
idle to every user at once, the others ramp up in about two seconds and hold. Run from the
repository root (or with it on PYTHONPATH). The read and subscription scenarios expect their
players seeded, which the runner does. When the test ends, the increments the service
acknowledged are written as JSON to `--acks-file`, for the runner's count check.
"""

from __future__ import annotations

import itertools
import json
import logging
import random
import time
from pathlib import Path
from typing import Any, ClassVar

import gevent
import gevent.event
import orjson
import websocket
from locust import LoadTestShape, User, constant, constant_throughput, events, task
from locust.argument_parser import LocustArgumentParser
from locust.contrib.fasthttp import FastHttpUser
from locust.env import Environment

from benchmarks import locust_scenarios as scenarios

logger = logging.getLogger(__name__)

TOKEN_HEADER = "X-Internal-Token"
"""The write token header (resolvers/auth.py also accepts `Authorization: Bearer`)."""
JSON_HEADERS = {"Content-Type": "application/json"}

acks = scenarios.AckCounter()
deliveries = scenarios.DeliveryTracker()
subscription_facts: dict[str, Any] = {"subscriber_errors": 0, "unresolved": {}}
output = {"acks_file": ""}


@events.init_command_line_parser.add_listener
def add_options(parser: LocustArgumentParser) -> None:
    """The scenario options (also settable as LOCUST_* environment variables)."""
    parser.add_argument(
        "--scenario",
        choices=list(scenarios.SCENARIOS),
        default="write-stress",
        env_var="LOCUST_SCENARIO",
        help="which scenario the load shape runs",
    )
    parser.add_argument(
        "--scenario-seconds",
        type=float,
        default=0.0,
        env_var="LOCUST_SCENARIO_SECONDS",
        help="length of the scenario (default: the scenario's own)",
    )
    parser.add_argument(
        "--write-token",
        default="",
        env_var="LOCUST_WRITE_TOKEN",
        help="the service's write token (sent in X-Internal-Token)",
        is_secret=True,
    )
    parser.add_argument(
        "--acks-file",
        default="",
        env_var="LOCUST_ACKS_FILE",
        help="where to write the acknowledged increments when the test ends (JSON)",
    )


def scenario_of(environment: Environment) -> scenarios.Scenario:
    """The scenario chosen on the command line."""
    options = environment.parsed_options
    name = getattr(options, "scenario", "write-stress") if options else "write-stress"
    return scenarios.SCENARIOS[name]


def write_token(environment: Environment) -> str:
    """The write token from the command line."""
    options = environment.parsed_options
    return str(getattr(options, "write_token", "") or "") if options else ""


# HTTP users


class GraphQLUser(FastHttpUser):
    """POSTs ready GraphQL bodies; a 200 carrying `errors` counts as a failure."""

    abstract = True
    wait_time = constant(0)
    """Closed loop: the next request as soon as the answer came."""

    def on_start(self) -> None:
        """Read the scenario's board and the token once."""
        self.board = scenario_of(self.environment).board
        self.write_headers = JSON_HEADERS | {TOKEN_HEADER: write_token(self.environment)}
        self.chooser = random.Random()

    def send(self, name: str, body: bytes, *, write: bool = False) -> bytes | None:
        """One request; the answer's body when it succeeded, None when it failed."""
        headers = self.write_headers if write else JSON_HEADERS
        with self.client.post(
            "/graphql",
            data=body,  # type: ignore[arg-type]  # geventhttpclient sends bytes as they are
            headers=headers,
            name=name,
            catch_response=True,
        ) as response:
            content = response.content or b""
            if scenarios.answered(response.status_code, content):
                response.success()
                return content
            detail = content[:200].decode(errors="replace") or str(response.error)
            response.failure(f"{response.status_code}: {detail}")
            return None

    def increment(self, username: str, delta: int) -> bytes | None:
        """incrementScore; an acknowledged one is counted for the count check."""
        body = scenarios.request_body(
            "incrementScore", {"u": username, "d": delta, "b": self.board}
        )
        answer = self.send("incrementScore", body, write=True)
        if answer is None:
            acks.failed_calls += 1
        else:
            acks.acknowledge(1, delta)
        return answer


class SpikeUser(GraphQLUser):
    """Half incrementScore, half topPlayers(limit: 10)."""

    players = scenarios.usernames(scenarios.SPIKE_PLAYERS)

    @task
    def increment_score(self) -> None:
        """A random player scores 1-9."""
        self.increment(self.chooser.choice(self.players), self.chooser.randint(1, 9))

    @task
    def top_players(self) -> None:
        """The top 10."""
        self.send("topPlayers", scenarios.request_body("topPlayers", {"b": self.board}))


class SpikeTrickleUser(SpikeUser):
    """The same calls at a walking pace: the traffic before and after the spike."""

    wait_time = constant_throughput(scenarios.TRICKLE_CALLS_PER_SECOND)


class WriteStressUser(GraphQLUser):
    """incrementScore only."""

    players = scenarios.usernames(scenarios.WRITE_PLAYERS)

    @task
    def increment_score(self) -> None:
        """A random player scores 1-9."""
        self.increment(self.chooser.choice(self.players), self.chooser.randint(1, 9))


class ReadUser(GraphQLUser):
    """topPlayers, player and neighborhood in equal shares, on the seeded players."""

    players = scenarios.usernames(scenarios.READ_PLAYERS)

    @task
    def top_players(self) -> None:
        """The top 10."""
        self.send("topPlayers", scenarios.request_body("topPlayers", {"b": self.board}))

    @task
    def player(self) -> None:
        """One random player's standing."""
        username = self.chooser.choice(self.players)
        self.send("player", scenarios.request_body("player", {"u": username, "b": self.board}))

    @task
    def neighborhood(self) -> None:
        """Five players above and below a random player."""
        username = self.chooser.choice(self.players)
        self.send(
            "neighborhood",
            scenarios.request_body("neighborhood", {"u": username, "b": self.board}),
        )


class IngestUser(GraphQLUser):
    """incrementScores of 500 increments per call, from bodies built once per process."""

    ready: ClassVar[list[scenarios.Batch]] = []

    def on_start(self) -> None:
        """Build the bodies once (the first user pays, before its first request)."""
        super().on_start()
        if not IngestUser.ready:
            IngestUser.ready = scenarios.batches(self.board, count=100)
        self.position = self.chooser.randrange(len(IngestUser.ready))

    @task
    def increment_scores(self) -> None:
        """One batch of 500."""
        self.position = (self.position + 1) % len(IngestUser.ready)
        batch = IngestUser.ready[self.position]
        if self.send("incrementScores x500", batch.body, write=True) is None:
            acks.failed_calls += 1
        else:
            acks.acknowledge(batch.events, batch.total)


class FanOutWriterUser(GraphQLUser):
    """Paced incrementScore calls: half to watched players, a few to the top, the rest to others.

    Each acknowledged increment (its score and rank) is handed to the delivery tracker, which
    then waits for the subscribers that must show it.
    """

    fixed_count = scenarios.SUBSCRIPTION_WRITERS
    wait_time = constant_throughput(scenarios.WRITER_CALLS_PER_SECOND)
    others = scenarios.usernames(scenarios.OTHER_PLAYERS)
    tops = scenarios.usernames(scenarios.TOP_PLAYERS)

    @task
    def increment_score(self) -> None:
        """One increment; its deliveries that already happened are reported at once."""
        pick = self.chooser.random()
        watched = deliveries.watched_players()
        if pick < 0.05:
            username, delta = self.chooser.choice(self.tops), self.chooser.randint(1, 20_000)
        elif pick < 0.5 and watched:
            username, delta = self.chooser.choice(watched), self.chooser.randint(1, 1000)
        else:
            username, delta = self.chooser.choice(self.others), self.chooser.randint(1, 1000)
        answer = self.increment(username, delta)
        if answer is None:
            return
        score, rank = scenarios.parse_update(answer)
        for delivery in deliveries.acknowledged(username, score, rank, time.perf_counter()):
            report_delivery(self.environment, delivery)


# WebSocket users


def report_delivery(environment: Environment, delivery: scenarios.Delivery) -> None:
    """An ack→delivery latency, as a custom request in Locust's statistics."""
    environment.events.request.fire(
        request_type="WS",
        name=f"{delivery.kind} ack→delivery",
        response_time=delivery.latency * 1000,
        response_length=0,
        exception=None,
        context={},
    )


class SubscriberUser(User):
    """One WebSocket speaking graphql-transport-ws with one subscription.

    A background greenlet reads the socket; the user's task only idles, so Locust can
    stop the user between tasks while messages keep being stamped as they arrive.
    """

    abstract = True
    wait_time = constant(1)
    document_name = ""

    def variables(self, board: str) -> dict[str, Any]:
        """The subscription's variables."""
        raise NotImplementedError

    def watch(self) -> int:
        """Register with the delivery tracker once the first message came; the watch id."""
        raise NotImplementedError

    def handle(self, data: dict[str, Any], arrived: float) -> None:
        """Match a `next` message's data with the acknowledged increments."""
        raise NotImplementedError

    def on_start(self) -> None:
        """Connect, init, subscribe; time it up to the first message (the current state)."""
        self.watch_id: int | None = None
        self.reader: gevent.Greenlet | None = None
        self.first_message = gevent.event.Event()
        board = scenario_of(self.environment).board
        host = self.host or ""
        url = host.replace("http://", "ws://").replace("https://", "wss://") + "/graphql"
        started = time.perf_counter()
        try:
            self.socket = websocket.create_connection(
                url, subprotocols=["graphql-transport-ws"], timeout=30
            )
            self.socket.send(json.dumps({"type": "connection_init", "payload": {}}))
            acknowledged = json.loads(self.socket.recv())
            if acknowledged.get("type") != "connection_ack":
                raise RuntimeError(f"no connection_ack: {acknowledged}")
            self.socket.send(
                json.dumps(
                    {
                        "id": "1",
                        "type": "subscribe",
                        "payload": {
                            "query": scenarios.DOCUMENTS[self.document_name],
                            "variables": self.variables(board),
                        },
                    }
                )
            )
            self.socket.settimeout(None)
            self.reader = gevent.spawn(self.read)
            if not self.first_message.wait(timeout=30):
                raise TimeoutError("no first message within 30 s")
        except Exception as error:
            # Reported as a failed request; the user then only idles.
            self.fire("subscribe", started, error)
            self.stop_reading()
            return
        self.fire("subscribe", started, None)

    def fire(self, name: str, started: float, error: Exception | None) -> None:
        """A WebSocket step as a request in Locust's statistics."""
        if error is not None:
            subscription_facts["subscriber_errors"] += 1
        self.environment.events.request.fire(
            request_type="WS",
            name=f"{self.document_name} {name}",
            response_time=(time.perf_counter() - started) * 1000,
            response_length=0,
            exception=error,
            context={},
        )

    def read(self) -> None:
        """Stamp every message as it arrives (runs until the socket closes)."""
        perf = time.perf_counter
        try:
            while True:
                raw = self.socket.recv()
                arrived = perf()
                message = orjson.loads(raw)
                kind = message.get("type")
                if kind == "next":
                    payload = message.get("payload") or {}
                    if payload.get("errors"):
                        self.fire("message", arrived, RuntimeError(str(payload["errors"])[:200]))
                    data = payload.get("data")
                    if data is not None:
                        if self.watch_id is None:
                            self.watch_id = self.watch()
                        self.handle(data, arrived)
                    self.first_message.set()
                elif kind == "ping":
                    self.socket.send('{"type":"pong"}')
                elif kind in ("error", "complete"):
                    self.fire("message", arrived, RuntimeError(f"{kind}: {raw!r}"[:200]))
                    self.first_message.set()
                    return
        except Exception as error:  # a closed socket, or a message the handlers cannot read
            if self.reader is not None:  # not closed by stop_reading
                self.fire("connection", perf(), error)

    def stop_reading(self) -> None:
        """Close the socket and forget the subscription."""
        reader, self.reader = self.reader, None
        socket = getattr(self, "socket", None)
        if socket is not None:
            socket.close(timeout=1)
        if reader is not None:
            reader.kill(block=False)
        if self.watch_id is not None:
            deliveries.unwatch(self.watch_id)
            self.watch_id = None

    def on_stop(self) -> None:
        """Unsubscribe by closing."""
        self.stop_reading()

    @task
    def idle(self) -> None:
        """Nothing: the reader greenlet does the work."""


class RankSubscriberUser(SubscriberUser):
    """rankChanged of one watched player (a different seeded player per user)."""

    document_name = "rankChanged"
    numbers = itertools.count()

    def variables(self, board: str) -> dict[str, Any]:
        """The next watched player."""
        prefix, size = scenarios.WATCHED_PLAYERS
        self.username = f"{prefix}{next(self.numbers) % size}"
        return {"u": self.username, "b": board}

    def watch(self) -> int:
        """Watch the player."""
        return deliveries.watch_player(self.username)

    def handle(self, data: dict[str, Any], arrived: float) -> None:
        """The player's new score delivers the increments up to it."""
        assert self.watch_id is not None
        change = data["rankChanged"]
        score = int(change["score"])
        for delivery in deliveries.shown(self.watch_id, self.username, score, arrived):
            report_delivery(self.environment, delivery)


class TopSubscriberUser(SubscriberUser):
    """topPlayersChanged(limit: 10): an overlay."""

    document_name = "topPlayersChanged"
    fixed_count = scenarios.SUBSCRIPTION_OVERLAYS

    def variables(self, board: str) -> dict[str, Any]:
        """The board."""
        return {"b": board}

    def watch(self) -> int:
        """Watch the top."""
        return deliveries.watch_top(scenarios.TOP_LIMIT)

    def handle(self, data: dict[str, Any], arrived: float) -> None:
        """Every listed player's score delivers that player's increments up to it."""
        assert self.watch_id is not None
        for entry in data["topPlayersChanged"]:
            shown = deliveries.shown(self.watch_id, entry["username"], int(entry["score"]), arrived)
            for delivery in shown:
                report_delivery(self.environment, delivery)


USER_CLASSES: dict[str, type[User]] = {
    user_class.__name__: user_class
    for user_class in (
        SpikeUser,
        SpikeTrickleUser,
        WriteStressUser,
        ReadUser,
        IngestUser,
        FanOutWriterUser,
        RankSubscriberUser,
        TopSubscriberUser,
    )
}


# The load shape and the end of the test


class ScenarioShape(LoadTestShape):
    """The chosen scenario's users over time (see `locust_scenarios.stages`)."""

    use_common_options = True

    def tick(self) -> tuple[int, float, list[type[User]]] | None:
        """The users to run now; None ends the test."""
        assert self.runner is not None
        environment = self.runner.environment
        scenario = scenario_of(environment)
        options = environment.parsed_options
        users = int(getattr(options, "num_users", 0) or scenario.users)
        seconds = float(getattr(options, "scenario_seconds", 0.0) or scenario.seconds)
        plan = scenarios.stages(scenario.name, users, seconds)
        stage = scenarios.stage_at(plan, self.get_run_time())
        if stage is None:
            return None
        names = stage.user_classes or scenario.user_classes
        return stage.users, stage.spawn_rate, [USER_CLASSES[name] for name in names]


class DeliveryMissedError(Exception):
    """An acknowledged change a rankChanged subscriber never showed."""


@events.test_stopping.add_listener
def count_unresolved(environment: Environment, **_arguments: Any) -> None:
    """Before the subscribers stop: acknowledged changes they never showed.

    A rankChanged one older than the grace period is missed and counted as a failure;
    a topPlayersChanged one is usually superseded (the player left the top 10 before
    the next list went out), so it is only reported in the acks file.
    """
    unresolved = deliveries.unresolved(time.perf_counter())
    subscription_facts["unresolved"] = unresolved
    for _ in range(unresolved["rankChanged old"]):
        environment.events.request.fire(
            request_type="WS",
            name="rankChanged ack→delivery",
            response_time=scenarios.DELIVERY_GRACE_SECONDS * 1000,
            response_length=0,
            exception=DeliveryMissedError(
                f"not delivered within {scenarios.DELIVERY_GRACE_SECONDS:g} s"
            ),
            context={},
        )


@events.init.add_listener
def remember_acks_file(environment: Environment, **_: Any) -> None:
    """Keep the acks file option: the quit event carries only the exit code."""
    options = environment.parsed_options
    output["acks_file"] = str(getattr(options, "acks_file", "") or "") if options else ""


@events.quit.add_listener
def write_acks(exit_code: int, **_: Any) -> None:
    """The acknowledged increments, for the runner's Redis = MySQL = acknowledged check."""
    if not output["acks_file"]:
        return
    facts = acks.as_dict() | subscription_facts | {"locust_exit_code": exit_code}
    Path(output["acks_file"]).write_text(json.dumps(facts, indent=2) + "\n")
