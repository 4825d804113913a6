"""The Locust scenarios' definitions: load shapes, user classes, documents, delivery matching.

Importing Locust monkey-patches the whole process with gevent (sockets, threads, ssl), which
would change every later test of this session. So the definitions live in a module without
Locust (`benchmarks.locust_scenarios`), tested here directly, and the locustfile itself is
imported only in a child interpreter, which reports its classes and its shape's ticks as JSON.
Nothing here starts Locust or sends a request.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from graphql import FieldNode, OperationDefinitionNode, build_schema, parse, validate
from graphql.execution import VariableValues
from graphql.execution.values import get_variable_values

from benchmarks import locust_run
from benchmarks import locust_scenarios as scenarios

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
SCHEMA = build_schema((REPO / "schema" / "schema.graphql").read_text())

# Imports the locustfile and reports its user classes and the shape's ticks second by second.
LOCUSTFILE_PROBE = """
import json, sys
from argparse import Namespace
from types import SimpleNamespace
import benchmarks.locustfile as locustfile

def ticks(scenario, users, seconds):
    shape = locustfile.ScenarioShape()
    options = Namespace(scenario=scenario, num_users=users, scenario_seconds=seconds)
    shape.runner = SimpleNamespace(environment=SimpleNamespace(parsed_options=options))
    found = []
    for second in range(int(seconds) + 2):
        shape.get_run_time = lambda second=second: second + 0.5
        tick = shape.tick()
        found.append(None if tick is None else [tick[0], tick[1], [c.__name__ for c in tick[2]]])
    return found

json.dump(
    {
        "classes": {
            name: {"abstract": user.abstract, "fixed_count": user.fixed_count}
            for name, user in locustfile.USER_CLASSES.items()
        },
        "module_classes": sorted(
            name for name, value in vars(locustfile).items()
            if isinstance(value, type) and issubclass(value, locustfile.User)
            and not value.abstract
        ),
        "ticks": {name: ticks(name, 20, 12) for name in sys.argv[1:]},
    },
    sys.stdout,
)
"""


@pytest.fixture(scope="module")
def locustfile_probe() -> dict[str, Any]:
    """What the locustfile holds, from a child interpreter (gevent patches only that one)."""
    completed = subprocess.run(
        [sys.executable, "-W", "error", "-c", LOCUSTFILE_PROBE, *scenarios.SCENARIOS],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    probe: dict[str, Any] = json.loads(completed.stdout)
    return probe


def users_over_time(plan: list[scenarios.Stage], seconds: int) -> list[int | None]:
    """The users the plan asks for at the middle of every second (None: over)."""
    stages = [scenarios.stage_at(plan, second + 0.5) for second in range(seconds + 1)]
    return [None if stage is None else stage.users for stage in stages]


def test_the_spike_goes_from_idle_to_the_peak_at_once_and_drops() -> None:
    plan = scenarios.stages("spike", 200, 30)

    assert users_over_time(plan, 30) == ([1] * 3 + [0] * 2 + [200] * 15 + [0] + [1] * 9 + [None])
    peak = next(stage for stage in plan if stage.users == 200)
    assert peak.spawn_rate == 200, "every user of the peak starts in the same second"
    assert peak.user_classes == ("SpikeUser",)
    trickles = [stage for stage in plan if stage.users == 1]
    assert [stage.user_classes for stage in trickles] == [("SpikeTrickleUser",)] * 2


def test_user_classes_change_only_through_zero_users() -> None:
    plan = scenarios.stages("spike", 50, 20)

    for before, after in itertools.pairwise(plan):
        if before.user_classes != after.user_classes:
            assert before.users == 0, (before, after)


@pytest.mark.parametrize("scenario", ["write-stress", "read", "ingest", "subscriptions"])
def test_steady_scenarios_ramp_up_then_hold(scenario: str) -> None:
    plan = scenarios.stages(scenario, 64, 20)

    assert users_over_time(plan, 20) == [64] * 20 + [None]
    assert plan[0].spawn_rate == 64 / scenarios.STEADY_RAMP_SECONDS
    assert plan[0].user_classes is None


def test_impossible_plans_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown scenario"):
        scenarios.stages("soak", 10, 60)
    with pytest.raises(ValueError, match="at least"):
        scenarios.stages("spike", 10, 6)
    with pytest.raises(ValueError, match="at least one user"):
        scenarios.stages("read", 0, 60)


def test_every_scenario_maps_to_user_classes_of_the_locustfile(
    locustfile_probe: dict[str, Any],
) -> None:
    classes = locustfile_probe["classes"]

    assert sorted(classes) == locustfile_probe["module_classes"], "USER_CLASSES is incomplete"
    used: set[str] = set()
    for scenario in scenarios.SCENARIOS.values():
        assert scenario.user_classes, scenario.name
        for name in scenario.user_classes:
            assert name in classes, (scenario.name, name)
            assert not classes[name]["abstract"], name
        for stage in scenarios.stages(scenario.name, 20, 12):
            assert set(stage.user_classes or ()) <= set(scenario.user_classes), scenario.name
        used |= set(scenario.user_classes)
    assert used == set(classes), "a user class no scenario runs"


def test_the_subscription_scenario_fixes_its_writers_and_overlays(
    locustfile_probe: dict[str, Any],
) -> None:
    classes = locustfile_probe["classes"]

    assert classes["FanOutWriterUser"]["fixed_count"] == scenarios.SUBSCRIPTION_WRITERS
    assert classes["TopSubscriberUser"]["fixed_count"] == scenarios.SUBSCRIPTION_OVERLAYS
    assert classes["RankSubscriberUser"]["fixed_count"] == 0
    assert locust_run.minimum_users("subscriptions") == 10


def test_the_locustfile_shape_follows_the_plans(locustfile_probe: dict[str, Any]) -> None:
    ticks = locustfile_probe["ticks"]

    spike = ticks["spike"]
    assert [tick[0] if tick else None for tick in spike] == [
        *[1, 1, 1, 0, 0],
        *[20, 20, 20, 20],
        *[0, 1, 1, None, None],
    ]
    assert spike[5] == [20, 20.0, ["SpikeUser"]]
    assert spike[0] == [1, 1.0, ["SpikeTrickleUser"]]
    assert spike[-1] is None
    for name in ("write-stress", "read", "ingest"):
        expected = [20, 10.0, list(scenarios.SCENARIOS[name].user_classes)]
        assert ticks[name] == [expected] * 12 + [None, None], name
    subscriptions = ticks["subscriptions"][0]
    assert sorted(subscriptions[2]) == sorted(scenarios.SCENARIOS["subscriptions"].user_classes)


@pytest.mark.parametrize("name", sorted(scenarios.DOCUMENTS))
def test_documents_are_valid_against_the_schema(name: str) -> None:
    document = parse(scenarios.DOCUMENTS[name])

    assert validate(SCHEMA, document) == []
    operation = document.definitions[0]
    assert isinstance(operation, OperationDefinitionNode)
    selected = operation.selection_set.selections[0]
    assert isinstance(selected, FieldNode)
    assert selected.name.value == name, "requests are reported under the field name"


def coerced_variables(query: str, variables: dict[str, Any]) -> dict[str, Any]:
    """The variables as the schema coerces them for the query; fails with the errors."""
    operation = parse(query).definitions[0]
    assert isinstance(operation, OperationDefinitionNode)
    values = get_variable_values(SCHEMA, operation.variable_definitions or (), variables)
    assert isinstance(values, VariableValues), values
    return values.coerced


def coerced(body: bytes) -> dict[str, Any]:
    """The variables of a ready POST body, coerced."""
    request = orjson.loads(body)
    return coerced_variables(request["query"], request["variables"])


def test_the_bodies_users_send_match_their_documents() -> None:
    board = "write"
    bodies = [
        scenarios.request_body("incrementScore", {"u": "lw1", "d": 5, "b": board}),
        scenarios.request_body("topPlayers", {"b": board}),
        scenarios.request_body("player", {"u": "lr2", "b": board}),
        scenarios.request_body("neighborhood", {"u": "lr3", "b": board}),
    ]
    for body in bodies:
        assert coerced(body)["b"] == board

    batch = scenarios.batches("ingest", count=2)[0]
    increments = coerced(batch.body)["i"]
    assert len(increments) == batch.events == scenarios.BATCH_SIZE
    assert sum(item["delta"] for item in increments) == batch.total
    assert {item["board"] for item in increments} == {"ingest"}


def test_subscription_variables_match_their_documents() -> None:
    rank = coerced_variables(scenarios.DOCUMENTS["rankChanged"], {"u": "lf1", "b": "fanout"})
    top = coerced_variables(scenarios.DOCUMENTS["topPlayersChanged"], {"b": "fanout"})

    assert rank == {"u": "lf1", "b": "fanout"}
    assert top == {"b": "fanout"}
    assert f"limit: {scenarios.TOP_LIMIT}" in scenarios.DOCUMENTS["topPlayersChanged"]


def test_seeded_players_cover_the_pools_the_users_read() -> None:
    read = dict(scenarios.seed_scores("read"))
    subscriptions = dict(scenarios.seed_scores("subscriptions"))

    assert set(read) == set(scenarios.usernames(scenarios.READ_PLAYERS))
    for pool in (scenarios.WATCHED_PLAYERS, scenarios.OTHER_PLAYERS, scenarios.TOP_PLAYERS):
        assert set(scenarios.usernames(pool)) <= set(subscriptions)
    tops = scenarios.usernames(scenarios.TOP_PLAYERS)
    others = scenarios.usernames(scenarios.WATCHED_PLAYERS) + scenarios.usernames(
        scenarios.OTHER_PLAYERS
    )
    assert min(subscriptions[name] for name in tops) > max(subscriptions[name] for name in others)
    assert scenarios.seed_scores("write-stress") == []


def test_a_rank_change_is_delivered_after_its_ack() -> None:
    tracker = scenarios.DeliveryTracker()
    watch = tracker.watch_player("ana")

    assert tracker.acknowledged("ana", 120, 40, at=10.0) == []
    assert tracker.acknowledged("bo", 90, 41, at=10.0) == [], "nobody watches bo"
    assert tracker.shown(watch, "ana", 110, at=10.01) == [], "an older score delivers nothing"
    delivered = tracker.shown(watch, "ana", 120, at=10.05)

    assert [delivery.kind for delivery in delivered] == ["rankChanged"]
    assert delivered[0].latency == pytest.approx(0.05)
    assert tracker.unresolved(now=20.0)["rankChanged old"] == 0


def test_a_message_beating_the_answer_counts_as_latency_zero() -> None:
    tracker = scenarios.DeliveryTracker()
    watch = tracker.watch_player("ana")

    tracker.shown(watch, "ana", 150, at=10.0)

    assert tracker.acknowledged("ana", 150, 3, at=10.2) == [scenarios.Delivery("rankChanged", 0)]


def test_one_coalesced_message_delivers_every_increment_up_to_its_score() -> None:
    tracker = scenarios.DeliveryTracker()
    watch = tracker.watch_player("ana")
    tracker.acknowledged("ana", 10, 9, at=1.0)
    tracker.acknowledged("ana", 30, 5, at=1.2)  # answers may arrive out of order
    tracker.acknowledged("ana", 20, 7, at=1.1)

    delivered = tracker.shown(watch, "ana", 20, at=1.5)

    assert sorted(round(delivery.latency, 3) for delivery in delivered) == [0.4, 0.5]
    assert tracker.unresolved(now=1.6) == {
        "rankChanged old": 0,
        "rankChanged recent": 1,
        "topPlayersChanged old": 0,
        "topPlayersChanged recent": 0,
    }
    assert tracker.unresolved(now=9.0)["rankChanged old"] == 1, "never shown: missed"


def test_overlays_wait_only_for_increments_that_reach_their_top() -> None:
    tracker = scenarios.DeliveryTracker()
    first = tracker.watch_top(10)
    second = tracker.watch_top(10)

    tracker.acknowledged("ana", 900, 11, at=1.0)
    tracker.acknowledged("bo", 950, 4, at=1.0)

    assert tracker.shown(first, "ana", 900, at=1.1) == [], "rank 11 is not in a top 10"
    assert len(tracker.shown(first, "bo", 950, at=1.1)) == 1
    assert tracker.unresolved(now=5.0)["topPlayersChanged old"] == 1, "the second overlay"
    assert len(tracker.shown(second, "bo", 960, at=5.1)) == 1


def test_a_stopped_subscriber_is_forgotten() -> None:
    tracker = scenarios.DeliveryTracker()
    watch = tracker.watch_player("ana")
    tracker.acknowledged("ana", 10, 1, at=1.0)

    tracker.unwatch(watch)

    assert tracker.watched_players() == []
    assert tracker.shown(watch, "ana", 10, at=1.1) == []
    assert tracker.acknowledged("ana", 20, 1, at=2.0) == []
    assert tracker.unresolved(now=9.0)["rankChanged old"] == 0


def test_percentiles_and_rates_from_locust_json() -> None:
    entry = {
        "method": "POST",
        "name": "incrementScore",
        "num_requests": 100,
        "num_failures": 2,
        "start_time": 1000.0,
        "last_request_timestamp": 1010.0,
        "response_times": {"5": 50, "10": 45, "200": 5},
        "max_response_time": 210.0,
        "num_reqs_per_sec": {"1000": 40, "1002": 60},
    }

    [line] = locust_run.summarize([entry])

    assert line["per_second"] == 10
    assert (line["p50_ms"], line["p95_ms"], line["p99_ms"]) == (5, 10, 200)
    assert locust_run.per_second([entry, entry]) == [80, 0, 120]


def test_the_runner_writes_locust_reports_under_results() -> None:
    options = locust_run.parse(["--scenario", "spike", "--minutes", "0.5", "--users", "50"])
    command = locust_run.locust_command(options, "http://127.0.0.1:1234")

    assert options.seconds == 30
    assert options.results.parent == REPO / "benchmarks" / "results"
    assert options.results.name.startswith("locust-spike-")
    assert "--headless" in command
    assert command[command.index("--html") + 1] == str(options.results / "report.html")
    assert command[command.index("--json-file") + 1] == str(options.results / "stats")
    assert command[command.index("--scenario-seconds") + 1] == "30"
    assert not any("token" in part.lower() for part in command), "the token stays off ps"


@pytest.mark.parametrize(
    "arguments",
    [
        ["--scenario", "subscriptions", "--users", "9"],
        ["--scenario", "spike", "--seconds", "5"],
        ["--scenario", "soak"],
    ],
)
def test_the_runner_refuses_impossible_runs(arguments: list[str]) -> None:
    with pytest.raises(SystemExit):
        locust_run.parse(arguments)
