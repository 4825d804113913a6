"""The hot operations' shortcut answers exactly as Strawberry does, and only when it may."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from schema.fast_path import FastPath, Plan
from tests.support.asgi_app import TOKEN
from tests.support.graphql_client import GraphQLHttp
from tests.support.operations import INCREMENT, INCREMENTS, NEIGHBORHOOD, PLAYER, TOP, score

pytestmark = pytest.mark.integration

FILLED = """
query($username: String!, $fill: Boolean! = false) {
  neighborhood(username: $username, radius: 1, fill: $fill) { username score rank topPercent }
}"""

FRIENDS = """
query($u: [String!]!, $b: ID! = "global") {
  players(usernames: $u, board: $b) { username score rank topPercent }
}"""

Case = tuple[str, dict[str, Any], str | None]
"""A document, its variables, and the write token to present (None: none)."""

READS: list[Case] = [
    (TOP, {}, None),
    (TOP, {"limit": 2, "offset": 1}, None),
    (TOP, {"limit": 0}, None),
    (TOP, {"limit": 101}, None),
    (TOP, {"board": "nope"}, None),
    (TOP, {"period": "2026-13"}, None),
    (TOP, {"period": "2001-01"}, None),
    (TOP, {"limit": "3"}, None),
    (TOP, {"limit": 2**31}, None),
    (TOP, {"limit": True}, None),
    (TOP, {"limit": None}, None),
    (PLAYER, {"username": "ana"}, None),
    (PLAYER, {"username": "nobody"}, None),
    (PLAYER, {"username": "bad name"}, None),
    (PLAYER, {}, None),
    (PLAYER, {"username": "ana", "board": "nope"}, None),
    (NEIGHBORHOOD, {"username": "bo", "radius": 1}, None),
    (NEIGHBORHOOD, {"username": "bo", "radius": 51}, None),
    (NEIGHBORHOOD, {"username": "bo"}, None),
    ("{ top: topPlayers(limit: 2) { rank username score rank } }", {}, None),
    ('query Named { player(username: "ana") { score } }', {}, "Named"),
    ('query Named { player(username: "ana") { score } }', {}, "Other"),
    ('{ player(username: "ana", period: null) { score } }', {}, None),
    ("{ topPlayers(limit: -1) { rank } }", {}, None),
    ('{ neighborhood(username: "ana", radius: 2) { username } }', {}, None),
    ("{ topPlayers(limit: 3) { score } }", {}, None),
    ("{ topPlayers(limit: 2, offset: 9) { rank username } }", {}, None),
    ("{ topPlayers(limit: 4) { topPercent rank username } }", {}, None),
    ('{ player(username: "cy") { topPercent } }', {}, None),
    ('{ neighborhood(username: "ana", radius: 1) { username topPercent } }', {}, None),
    ('{ neighborhood(username: "ana", radius: 1, fill: true) { username rank } }', {}, None),
    ('{ neighborhood(username: "bo", radius: 2, fill: false) { username rank } }', {}, None),
    (FILLED, {"username": "dee", "fill": True}, None),
    (FILLED, {"username": "dee"}, None),
    (FILLED, {"username": "dee", "fill": None}, None),
    (FILLED, {"username": "dee", "fill": "yes"}, None),
    (FILLED, {"username": "dee", "fill": 1}, None),
    (FRIENDS, {"u": ["dee", "ana", "nobody", "bo"]}, None),
    (FRIENDS, {"u": ["cy"]}, None),
    (FRIENDS, {"u": "cy"}, None),  # GraphQL makes a list of one: the normal path's work
    (FRIENDS, {"u": []}, None),
    (FRIENDS, {"u": ["ana", "ana"]}, None),
    (FRIENDS, {"u": ["ana", 3]}, None),
    (FRIENDS, {"u": ["ana", None]}, None),
    (FRIENDS, {"u": [f"p{index}" for index in range(101)]}, None),
    (FRIENDS, {"u": ["ana"], "b": "nope"}, None),
    ('{ players(usernames: ["bo", "ana"]) { username displayName metadata rank } }', {}, None),
    ("{ topPlayers { displayName username metadata topPercent } }", {}, None),
    ("{ topPlayers(limit: 1) { metadata } }", {}, None),
    ('{ player(username: "bo") { displayName metadata } }', {}, None),
    ('{ player(username: "nobody") { displayName } }', {}, None),
    ('{ neighborhood(username: "ana", fill: true) { username displayName } }', {}, None),
]
WRITES: list[Case] = [
    (INCREMENT, {"username": "ana", "delta": 5, "eventId": "seen"}, TOKEN),
    (INCREMENT, {"username": "ana", "delta": 5, "eventId": "seen"}, None),
    (INCREMENT, {"username": "ana", "delta": 5, "eventId": "seen"}, "wrong"),
    (INCREMENT, {"username": "ana", "delta": 0}, TOKEN),
    (INCREMENT, {"username": "", "delta": 1}, TOKEN),
    (INCREMENT, {"username": "ana", "delta": 1, "board": "nope"}, TOKEN),
    (INCREMENT, {"username": "ana", "delta": 1, "eventId": "a b"}, TOKEN),
    (INCREMENT, {"username": "ana"}, TOKEN),
    (INCREMENT, {"username": "ana", "delta": 1.5}, TOKEN),
    (INCREMENTS, {"increments": [{"username": "ana", "delta": 5, "eventId": "seen"}]}, TOKEN),
    (INCREMENTS, {"increments": [{"username": "ana", "delta": 5, "eventId": "seen"}]}, None),
    (INCREMENTS, {"increments": []}, TOKEN),
    (INCREMENTS, {"increments": [{"username": "ana", "delta": 0}]}, TOKEN),
    (INCREMENTS, {"increments": [{"username": "ana", "delta": 1, "board": "nope"}]}, TOKEN),
    (INCREMENTS, {"increments": [{"username": "ana", "delta": 1, "board": None}]}, TOKEN),
    (INCREMENTS, {"increments": [{"username": "ana"}]}, TOKEN),
    (INCREMENTS, {"increments": [{"username": "ana", "delta": 1, "extra": 1}]}, TOKEN),
    (INCREMENTS, {"increments": {"username": "ana", "delta": 1, "eventId": "seen"}}, TOKEN),
    (INCREMENTS, {"increments": None}, TOKEN),
    (INCREMENTS, {}, TOKEN),
    (
        'mutation { incrementScores(increments: [{username: "ana", delta: 1, eventId: "seen"}])'
        " { score applied } }",
        {},
        TOKEN,
    ),
    (
        INCREMENTS,
        {"increments": [{"username": f"p{index}", "delta": 1} for index in range(1001)]},
        TOKEN,
    ),
    # Each field of an item off its type, one at a time (the item check is inlined).
    (INCREMENTS, {"increments": [{"username": 7, "delta": 1}]}, TOKEN),
    (INCREMENTS, {"increments": [{"username": None, "delta": 1}]}, TOKEN),
    (INCREMENTS, {"increments": [{"username": "ana", "delta": True}]}, TOKEN),
    (INCREMENTS, {"increments": [{"username": "ana", "delta": 2**31}]}, TOKEN),
    (INCREMENTS, {"increments": [{"username": "ana", "delta": -(2**31)}]}, TOKEN),
    (INCREMENTS, {"increments": [{"username": "ana", "delta": "1"}]}, TOKEN),
    (INCREMENTS, {"increments": [{"username": "ana", "delta": None}]}, TOKEN),
    (INCREMENTS, {"increments": [{"username": "ana", "delta": 1, "board": 3}]}, TOKEN),
    (
        INCREMENTS,
        {"increments": [{"username": "ana", "delta": 1, "eventId": None}, {"username": "ana"}]},
        TOKEN,
    ),
    (
        INCREMENTS,
        {"increments": [{"username": "ana", "delta": 1, "eventId": None}, {"username": "a b"}]},
        TOKEN,
    ),
    (INCREMENTS, {"increments": [{"username": "ana", "delta": 1, "eventId": 5}]}, TOKEN),
    (INCREMENTS, {"increments": [{"username": "ana", "delta": 1}, "ana"]}, TOKEN),
    (INCREMENTS, {"increments": [{"username": "ana", "delta": 1}, None]}, TOKEN),
    (INCREMENTS, {"increments": [{"username": "e\u0301", "delta": 1}]}, TOKEN),
    (
        INCREMENTS,
        {"increments": [{"username": "ana", "delta": 2, "board": "global", "eventId": "seen"}]},
        TOKEN,
    ),
    # Selections of one field, of all fields and in another order (one encoder per shape);
    # the seeded "seen" event makes the writes repeats, so both paths answer alike.
    (
        "mutation($i: [ScoreIncrement!]!) { incrementScores(increments: $i) { applied } }",
        {
            "i": [
                {"username": "ana", "delta": 1, "eventId": "seen"},
                {"username": "bo", "delta": 2, "eventId": "seen"},
            ]
        },
        TOKEN,
    ),
    (
        "mutation($i: [ScoreIncrement!]!) { incrementScores(increments: $i)"
        " { applied rank score period board username } }",
        {"i": [{"username": "cy", "delta": 3, "eventId": "seen"}]},
        TOKEN,
    ),
]


@pytest.fixture
async def seeded(gql: GraphQLHttp) -> GraphQLHttp:
    for username, delta in [("ana", 10), ("bo", 20), ("cy", 20), ("dee", 5)]:
        await score(gql, username, delta)
    await score(gql, "ana", 5, eventId="seen")
    await gql.data(
        'mutation($m: JSON) { setPlayerProfile(username: "bo", displayName: "Bö <b>",'
        " metadata: $m) }",
        {"m": {"country": "FR", "ratio": 0.1, "tags": ["é", None, True], "n": {"x": -3}}},
    )
    return gql


async def post(client: httpx.AsyncClient, case: Case) -> tuple[int, Any]:
    """POST a case; an `operationName` among the variables goes beside them instead."""
    query, variables, token = case
    payload: dict[str, Any] = {"query": query, "variables": dict(variables)}
    if "operationName" in variables:
        payload["operationName"] = payload["variables"].pop("operationName")
    headers = {"X-Internal-Token": token} if token else {}
    response = await client.post("/graphql", json=payload, headers=headers)
    return response.status_code, response.json()


@pytest.mark.parametrize("case", READS + WRITES, ids=lambda case: repr(case[1]))
async def test_shortcut_answers_as_strawberry_does(
    app: Starlette, seeded: GraphQLHttp, case: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = await post(seeded.client, case)
    monkeypatch.setattr(app.state.graphql.fast_path, "plan", lambda query, name: None)
    slow = await post(seeded.client, case)
    assert fast == slow


def test_simple_documents_take_the_shortcut(app: Starlette) -> None:
    fast_path: FastPath = app.state.graphql.fast_path
    for document in (TOP, PLAYER, NEIGHBORHOOD, INCREMENT, INCREMENTS, FILLED, FRIENDS):
        assert isinstance(fast_path.plan(document, None), Plan), document
    named = "{ topPlayers { username displayName metadata } }"
    assert isinstance(fast_path.plan(named, None), Plan)


@pytest.mark.parametrize(
    "document",
    [
        "{ topPlayers { rank } leaderboards { id } }",
        "{ topPlayers { ...F } } fragment F on RankedPlayer { rank }",
        "{ topPlayers @include(if: true) { rank } }",
        "{ topPlayers { rank __typename } }",
        "{ topPlayers { r: rank } }",
        "{ topPlayers { rank rank } }",
        "{ leaderboards { id } }",
        "{ topPlayers { nope } }",
        "{ topPlayers(",
        "subscription { topPlayersChanged { rank } }",
        'query A { player(username: "a") { rank } } query B { player(username: "b") { rank } }',
    ],
)
def test_other_documents_take_the_normal_path(app: Starlette, document: str) -> None:
    fast_path: FastPath = app.state.graphql.fast_path
    assert fast_path.plan(document, None) is None
