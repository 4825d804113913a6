"""The shortcuts take argument names, types and defaults from the built schema: a default
changed on the Strawberry field (schema/operations.py) is the default the shortcut uses."""

from __future__ import annotations

from typing import Any, cast

import pytest
from strawberry.types.base import get_object_definition
from strawberry.types.field import StrawberryField

from resolvers.errors import unauthenticated
from resolvers.service import IncrementRequest, LeaderboardService
from schema.build import build_schema
from schema.fast_path import FastPath
from schema.fast_subscriptions import FastSubscriptions
from schema.operations import Mutation, Query, Subscription
from schema.types import ScoreIncrement

pytestmark = pytest.mark.unit


class Recorder:
    """Stands in for the service: records the calls the shortcut makes."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.ranks: list[bool] = []
        """Whether each increment call asked for ranks."""

    async def top(self, *args: Any) -> list[Any]:
        self.calls.append(("top", *args))
        return []

    async def neighborhood(self, *args: Any) -> list[Any]:
        self.calls.append(("neighborhood", *args))
        return []

    async def increment(
        self,
        requests: list[IncrementRequest],
        writer_id: str | None = None,
        sequence: int | None = None,
        *,
        ranks: bool = True,
    ) -> list[Any]:
        self.calls.append(("increment", *requests))
        self.ranks.append(ranks)
        raise unauthenticated()  # any refusal: the shortcut answers it as an error


def field_of(kind: type, python_name: str) -> StrawberryField:
    definition = get_object_definition(kind, strict=True)
    return next(field for field in definition.fields if field.python_name == python_name)


def change_default(
    monkeypatch: pytest.MonkeyPatch, kind: type, field: str, argument: str, default: Any
) -> None:
    """Change one argument's default where Strawberry reads it (the field's declaration)."""
    for declared in field_of(kind, field).arguments:
        if declared.python_name == argument:
            monkeypatch.setattr(declared, "default", default)
            return
    raise AssertionError(argument)


async def answer(
    fast: FastPath, document: str, variables: dict[str, Any] | None = None, authorized: bool = False
) -> None:
    plan = fast.plan(document, None)
    assert plan is not None
    assert await fast.answer(plan, variables or {}, authorized) is not None


async def test_changed_read_defaults_reach_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    change_default(monkeypatch, Query, "top_players", "limit", 7)
    change_default(monkeypatch, Query, "top_players", "board", "alltime")
    change_default(monkeypatch, Query, "neighborhood", "radius", 2)
    schema = build_schema()._schema
    recorder = Recorder()
    fast = FastPath(schema, cast(LeaderboardService, recorder), max_tokens=2_000)
    await answer(fast, "{ topPlayers { username } }")
    await answer(fast, '{ neighborhood(username: "ana") { rank } }')
    await answer(fast, '{ neighborhood(username: "ana", fill: true) { rank } }')
    assert recorder.calls == [
        ("top", "alltime", None, 7, 0),
        ("neighborhood", "global", None, "ana", 2, False),
        ("neighborhood", "global", None, "ana", 2, True),
    ]


async def test_changed_write_defaults_reach_the_fast_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    change_default(monkeypatch, Mutation, "increment_score", "delta", 3)
    monkeypatch.setattr(field_of(ScoreIncrement, "board"), "default_value", "alltime")
    schema = build_schema()._schema
    recorder = Recorder()
    fast = FastPath(schema, cast(LeaderboardService, recorder), max_tokens=2_000)
    await answer(fast, 'mutation { incrementScore(username: "ana") { rank } }', authorized=True)
    await answer(
        fast,
        "mutation($items: [ScoreIncrement!]!) { incrementScores(increments: $items) { rank } }",
        {"items": [{"username": "bo", "delta": 1}]},
        authorized=True,
    )
    assert recorder.calls == [
        ("increment", IncrementRequest("ana", 3, "global", None)),
        ("increment", IncrementRequest("bo", 1, "alltime", None)),
    ]


def test_changed_subscription_defaults_reach_the_subscription_shortcut(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    change_default(monkeypatch, Subscription, "top_players_changed", "limit", 4)
    shortcut = FastSubscriptions(build_schema()._schema, 2_000, lambda _field, _code: None)
    plan = shortcut.plan("subscription { topPlayersChanged { rank } }", None)
    assert plan is not None
    assert plan.field.shape.arguments["limit"].default == 4
    assert plan.field.shape.arguments["board"].default == "global"


def test_the_shortcuts_know_the_five_operations_and_their_fields() -> None:
    schema = build_schema()._schema
    fast = FastPath(schema, cast(LeaderboardService, Recorder()), max_tokens=2_000)
    for name in ("topPlayers", "player", "neighborhood", "incrementScore", "incrementScores"):
        kind = "mutation" if name.startswith("increment") else "query"
        plan = fast.plan(f"{kind} {{ {name} {{ rank }} }}", None)
        # Planned when the document is valid (required arguments given), so ask the shape.
        assert plan is None or plan.field.shape.subfields
    player = fast.plan('{ player(username: "a") { username score rank } }', None)
    assert player is not None
    assert player.field.shape.nullable
    assert player.field.shape.subfields == {
        "username",
        "score",
        "rank",
        "topPercent",
        "displayName",
        "metadata",
    }


@pytest.mark.parametrize(
    ("selection", "ranks"),
    [("{ rank }", True), ("{ username score rank }", True), ("{ score applied }", False)],
)
async def test_the_shortcut_asks_for_ranks_only_when_rank_is_selected(
    selection: str, ranks: bool
) -> None:
    recorder = Recorder()
    fast = FastPath(build_schema()._schema, cast(LeaderboardService, recorder), max_tokens=2_000)
    await answer(
        fast, f'mutation {{ incrementScore(username: "ana") {selection} }}', authorized=True
    )
    await answer(
        fast,
        "mutation($items: [ScoreIncrement!]!) { incrementScores(increments: $items) "
        f"{selection} }}",
        {"items": [{"username": "bo", "delta": 1}]},
        authorized=True,
    )
    assert recorder.ranks == [ranks, ranks]
