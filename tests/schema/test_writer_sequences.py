"""writerId and sequence over the API (idempotency per writer): bad input refused with its
code and nothing applied, replays answered like a replayed eventId, the shortcut answering as
Strawberry does, and a rebuild from the history still refusing a replayed sequence."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from schema.fast_path import Plan
from tests.support.asgi_app import TOKEN
from tests.support.graphql_client import GraphQLHttp
from tests.support.operations import top

pytestmark = pytest.mark.integration

INCREMENT = """
mutation($username: String!, $delta: Int! = 1, $writerId: String, $sequence: Long) {
  incrementScore(username: $username, delta: $delta, writerId: $writerId, sequence: $sequence) {
    username score rank applied
  }
}"""
INCREMENTS = """
mutation($increments: [ScoreIncrement!]!, $writerId: String, $sequence: Long) {
  incrementScores(increments: $increments, writerId: $writerId, sequence: $sequence) {
    username score rank applied
  }
}"""
SET = """
mutation($username: String!, $score: Long!, $writerId: String, $sequence: Long) {
  setScore(username: $username, score: $score, board: "best", writerId: $writerId,
           sequence: $sequence) { username score rank improved applied }
}"""
MAX_EXACT = 2**53 - 1

BAD_WRITERS: list[tuple[str, dict[str, Any]]] = [
    ("writer without sequence", {"writerId": "gs-1"}),
    ("sequence without writer", {"sequence": 1}),
    ("empty writer", {"writerId": "", "sequence": 1}),
    ("space in writer", {"writerId": "gs 1", "sequence": 1}),
    ("long writer", {"writerId": "w" * 129, "sequence": 1}),
    ("non-ASCII writer", {"writerId": "sérveur", "sequence": 1}),
    ("negative sequence", {"writerId": "gs-1", "sequence": -1}),
    ("sequence beyond 2^53 - 1", {"writerId": "gs-1", "sequence": MAX_EXACT + 1}),
    ("fractional sequence", {"writerId": "gs-1", "sequence": 1.5}),
    ("text sequence", {"writerId": "gs-1", "sequence": "one"}),
]


@pytest.fixture
def setting_overrides() -> dict[str, Any]:
    """Acknowledged once in the history: a rebuild right after a write finds it."""
    return {"ack": "persisted", "admin_token": "writer-admin"}


@pytest.mark.parametrize(("case", "writer"), BAD_WRITERS, ids=[c for c, _ in BAD_WRITERS])
async def test_bad_writer_is_refused_and_changes_nothing(
    gql: GraphQLHttp, case: str, writer: dict[str, Any]
) -> None:
    increment = {"username": "ana", "delta": 1}
    assert await gql.error_codes(INCREMENT, increment | writer) == ["BAD_USER_INPUT"], case
    assert await gql.error_codes(INCREMENTS, {"increments": [increment]} | writer) == [
        "BAD_USER_INPUT"
    ]
    assert await top(gql) == []


async def test_a_writer_at_the_bounds_is_accepted(gql: GraphQLHttp) -> None:
    for writer, sequence in (("w" * 128, 0), ("gs_1.eu-west:7", MAX_EXACT)):
        data = await gql.data(
            INCREMENT, {"username": "ana", "writerId": writer, "sequence": sequence}
        )
        assert data["incrementScore"]["applied"]
    assert await top(gql) == [("ana", 2, 1)]


async def test_a_replayed_sequence_is_not_applied(gql: GraphQLHttp) -> None:
    call = {"increments": [{"username": "ana", "delta": 5}, {"username": "bo", "delta": 3}]}
    first = await gql.data(INCREMENTS, call | {"writerId": "gs", "sequence": 10})
    again = await gql.data(INCREMENTS, call | {"writerId": "gs", "sequence": 10})
    older = await gql.data(INCREMENT, {"username": "cy", "writerId": "gs", "sequence": 9})
    assert [row["applied"] for row in first["incrementScores"]] == [True, True]
    assert again["incrementScores"] == [
        {"username": "ana", "score": 5, "rank": 1, "applied": False},
        {"username": "bo", "score": 3, "rank": 2, "applied": False},
    ]
    assert older["incrementScore"] == {"username": "cy", "score": 0, "rank": 3, "applied": False}
    later = await gql.data(INCREMENT, {"username": "cy", "writerId": "gs", "sequence": 12})
    assert later["incrementScore"]["applied"]
    assert await top(gql) == [("ana", 5, 1), ("bo", 3, 2), ("cy", 1, 3)]


async def post(client: httpx.AsyncClient, query: str, variables: dict[str, Any]) -> Any:
    response = await client.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"X-Internal-Token": TOKEN},
    )
    return response.status_code, response.json()


async def test_the_shortcut_answers_as_strawberry_does(
    app: Starlette, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = await http.post(
        "/graphql",
        json={
            "query": 'mutation { createLeaderboard(input: {id: "best", updateRule: BEST}) { id } }'
        },
        headers={"X-Internal-Token": "writer-admin"},
    )
    assert "errors" not in created.json()
    cases: list[tuple[str, dict[str, Any]]] = [
        (INCREMENT, {"username": "ana", "writerId": "gs", "sequence": 1}),
        (
            INCREMENTS,
            {"increments": [{"username": "bo", "delta": 2}], "writerId": "gs", "sequence": 2},
        ),
        (SET, {"username": "ana", "score": 7, "writerId": "gs", "sequence": 3}),
        (INCREMENT, {"username": "ana", "writerId": "gs"}),
        (SET, {"username": "ana", "score": 7, "sequence": 3}),
    ]
    # The writer's arguments keep the hot mutations on the shortcut.
    for query in (INCREMENT, INCREMENTS, SET):
        assert isinstance(app.state.graphql.fast_path.plan(query, None), Plan)
    fast = [await post(http, query, variables) for query, variables in cases]
    # Strawberry's answers: every call is now a replay, answered as the shortcut's were
    # (the writer's calls) or refused alike (the bad ones).
    monkeypatch.setattr(app.state.graphql.fast_path, "plan", lambda query, name: None)
    slow = [await post(http, query, variables) for query, variables in cases]
    assert [answer[1].get("errors") is None for answer in fast] == [True, True, True, False, False]
    replays = [
        {"data": {"incrementScore": {"username": "ana", "score": 1, "rank": 2, "applied": False}}},
        {
            "data": {
                "incrementScores": [{"username": "bo", "score": 2, "rank": 1, "applied": False}]
            }
        },
        {
            "data": {
                "setScore": {
                    "username": "ana",
                    "score": 7,
                    "rank": 1,
                    "improved": False,
                    "applied": False,
                }
            }
        },
    ]
    assert [answer[1] for answer in slow[:3]] == replays
    assert slow[3:] == fast[3:]
    assert [answer[1]["errors"][0]["extensions"]["code"] for answer in fast[3:]] == [
        "BAD_USER_INPUT",
        "BAD_USER_INPUT",
    ]


async def test_a_rebuild_still_refuses_a_replayed_sequence(
    app: Starlette, gql: GraphQLHttp
) -> None:
    first = await gql.data(
        INCREMENT, {"username": "ana", "delta": 4, "writerId": "gs", "sequence": 3}
    )
    assert first["incrementScore"]["applied"]
    # The live store loses the period (an empty one in its place, no writer known), then
    # the operator's rebuild reads it back from the history, whose rows carry the writer
    # and sequence.
    resources = app.state.resources
    period = resources.service.board("global").current_period()
    await resources.ranking.load("global", period, [], [])
    await resources.recovery.rebuild("global", period)
    replay = await gql.data(
        INCREMENT, {"username": "ana", "delta": 4, "writerId": "gs", "sequence": 3}
    )
    assert replay["incrementScore"] == {"username": "ana", "score": 4, "rank": 1, "applied": False}
    later = await gql.data(
        INCREMENT, {"username": "ana", "delta": 4, "writerId": "gs", "sequence": 4}
    )
    assert later["incrementScore"]["applied"]
    assert await top(gql) == [("ana", 8, 1)]
