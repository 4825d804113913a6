"""The request limits hold for the board operations too: aliases, the number of boards,
GET, and hostile strings, on both backends."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.graphql_client import GraphQLHttp

pytestmark = pytest.mark.integration

ADMIN = "limits-admin-token"
COUNT = "{ leaderboards { id } }"
MAX_BOARDS = 8
"""3 declared (tests/api/conftest.py) + 5 created."""


@pytest.fixture
def setting_overrides() -> dict[str, Any]:
    """An admin token and a small bound on the number of boards."""
    return {"admin_token": ADMIN, "max_boards": MAX_BOARDS}


@pytest.fixture
def admin(gql: GraphQLHttp) -> GraphQLHttp:
    """A client presenting the admin token."""
    return GraphQLHttp(gql.client, token=ADMIN)


def creations(count: int, prefix: str = "b") -> str:
    """One mutation document creating `count` boards under aliases."""
    fields = " ".join(
        f'{prefix}{index}: createLeaderboard(input: {{id: "{prefix}{index}"}}) {{ id }}'
        for index in range(count)
    )
    return f"mutation {{ {fields} }}"


async def test_aliased_creations_over_the_alias_limit_create_nothing(admin: GraphQLHttp) -> None:
    before = await admin.data(COUNT)
    assert await admin.error_codes(creations(31)) == ["BAD_USER_INPUT"]
    assert await admin.data(COUNT) == before


async def test_aliased_creations_stop_at_the_board_limit(admin: GraphQLHttp) -> None:
    body = await admin.execute(creations(30))
    created = [key for key, value in (body.get("data") or {}).items() if value is not None]
    errors = body["errors"]
    assert {error["extensions"]["code"] for error in errors} == {"BAD_USER_INPUT"}
    assert all("LEADERBOARD_MAX_BOARDS" in error["message"] for error in errors)
    boards = (await admin.data(COUNT))["leaderboards"]
    assert len(boards) == MAX_BOARDS
    # Mutations run one after the other; the first refusal (b5) nulls the non-null data
    # and ends the run, yet the 5 that fit were created.
    assert created == []
    assert [error["path"] for error in errors] == [["b5"]]
    assert {board["id"] for board in boards} >= {f"b{index}" for index in range(5)}


async def test_creation_over_get_is_refused(admin: GraphQLHttp) -> None:
    before = await admin.data(COUNT)
    response = await admin.client.get(
        "/graphql", params={"query": creations(1)}, headers={"X-Internal-Token": ADMIN}
    )
    assert response.status_code in (400, 405)
    assert await admin.data(COUNT) == before


@pytest.mark.parametrize("field", ["id", "timeZone"])
async def test_huge_strings_are_refused_briefly(admin: GraphQLHttp, field: str) -> None:
    before = await admin.data(COUNT)
    value = "Europe/" + "x" * 200_000
    variables = {"input": {"id": "fine", field: value}}
    body = await admin.execute(
        "mutation ($input: LeaderboardInput!) { createLeaderboard(input: $input) { id } }",
        variables,
    )
    assert [error["extensions"]["code"] for error in body["errors"]] == ["BAD_USER_INPUT"]
    assert len(body["errors"][0]["message"]) < 500, "the message must not echo the input"
    assert await admin.data(COUNT) == before
