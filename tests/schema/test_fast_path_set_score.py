"""setScore takes the hot operations' shortcut and answers exactly as Strawberry does."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from schema.fast_path import FastPath, Plan
from tests.support.asgi_app import TOKEN

pytestmark = pytest.mark.integration

ADMIN = "fast-path-admin"
SET = """
mutation($username: String!, $score: Long!, $board: ID!, $eventId: String) {
  setScore(username: $username, score: $score, board: $board, eventId: $eventId) {
    username board period score rank improved applied
  }
}"""
MAX_EXACT = 2**53 - 1

Case = tuple[str, dict[str, Any], str | None]

CASES: list[Case] = [
    # Replays of the seeded submission: both paths answer alike (nothing changes).
    (SET, {"username": "ana", "score": 50, "board": "best", "eventId": "seen"}, TOKEN),
    (SET, {"username": "ana", "score": 50, "board": "best", "eventId": "seen"}, None),
    (SET, {"username": "ana", "score": 50, "board": "best", "eventId": "seen"}, "wrong"),
    (SET, {"username": "ana", "score": 51, "board": "best", "eventId": "seen"}, TOKEN),
    (SET, {"username": "ana", "score": 5, "board": "global"}, TOKEN),
    (SET, {"username": "ana", "score": 5, "board": "nope"}, TOKEN),
    (SET, {"username": "a b", "score": 5, "board": "best"}, TOKEN),
    (SET, {"username": "ana", "score": MAX_EXACT + 1, "board": "best"}, TOKEN),
    (SET, {"username": "ana", "score": 1.5, "board": "best"}, TOKEN),
    (SET, {"username": "ana", "score": "5", "board": "best"}, TOKEN),
    (SET, {"username": "ana", "score": True, "board": "best"}, TOKEN),
    (SET, {"username": "ana", "board": "best"}, TOKEN),
    (SET, {"username": "ana", "score": 2_000_000, "board": "best"}, TOKEN),  # above maxScore
    (
        'mutation { setScore(username: "ana", score: 50, board: "best", eventId: "seen")'
        " { improved score } }",
        {},
        TOKEN,
    ),
]


@pytest.fixture
def setting_overrides() -> dict[str, Any]:
    """An admin token, to create the BEST board."""
    return {"admin_token": ADMIN}


@pytest.fixture
async def seeded(http: httpx.AsyncClient) -> httpx.AsyncClient:
    created = await http.post(
        "/graphql",
        json={
            "query": 'mutation { createLeaderboard(input: {id: "best", updateRule: BEST, '
            "sortOrder: ASC, tieBreak: EARLIEST, maxScore: 1000000}) { id } }"
        },
        headers={"X-Internal-Token": ADMIN},
    )
    assert "errors" not in created.json()
    for username, score in (("bo", 40), ("cy", 50)):
        await post(http, (SET, {"username": username, "score": score, "board": "best"}, TOKEN))
    await post(
        http, (SET, {"username": "ana", "score": 50, "board": "best", "eventId": "seen"}, TOKEN)
    )
    return http


async def post(client: httpx.AsyncClient, case: Case) -> tuple[int, Any]:
    """POST a case."""
    query, variables, token = case
    headers = {"X-Internal-Token": token} if token else {}
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )
    return response.status_code, response.json()


@pytest.mark.parametrize("case", CASES, ids=lambda case: repr(case[1]))
async def test_shortcut_answers_as_strawberry_does(
    app: Starlette, seeded: httpx.AsyncClient, case: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = await post(seeded, case)
    monkeypatch.setattr(app.state.graphql.fast_path, "plan", lambda query, name: None)
    slow = await post(seeded, case)
    assert fast == slow


async def test_a_new_submission_is_answered_by_the_shortcut(
    app: Starlette, seeded: httpx.AsyncClient
) -> None:
    fast_path: FastPath = app.state.graphql.fast_path
    assert isinstance(fast_path.plan(SET, None), Plan)
    status, body = await post(
        seeded, (SET, {"username": "di", "score": 45, "board": "best"}, TOKEN)
    )
    assert status == 200
    answer = body["data"]["setScore"]
    assert (answer["score"], answer["rank"], answer["improved"], answer["applied"]) == (
        45,
        2,
        True,
        True,
    )
