"""Each bad input the contract lists gets a clear error with its code, and changes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.applications import Starlette

from tests.support.graphql_client import GraphQLHttp
from tests.support.operations import INCREMENT, INCREMENTS, NEIGHBORHOOD, TOP, top

pytestmark = pytest.mark.integration

BAD_INCREMENTS: list[tuple[str, dict[str, Any]]] = [
    ("empty username", {"username": "", "delta": 1}),
    ("long username", {"username": "x" * 65, "delta": 1}),
    ("space in username", {"username": "ana b", "delta": 1}),
    ("symbol in username", {"username": "ana$", "delta": 1}),
    ("zero delta", {"username": "ana", "delta": 0}),
    ("delta over the bound", {"username": "ana", "delta": 1_000_001}),
    ("delta under the bound", {"username": "ana", "delta": -1_000_001}),
    ("event id with a space", {"username": "ana", "delta": 1, "eventId": "a b"}),
    ("empty event id", {"username": "ana", "delta": 1, "eventId": ""}),
    ("long event id", {"username": "ana", "delta": 1, "eventId": "e" * 129}),
]


@pytest.mark.parametrize(("case", "variables"), BAD_INCREMENTS, ids=[c for c, _ in BAD_INCREMENTS])
async def test_bad_increment_is_refused(
    gql: GraphQLHttp, case: str, variables: dict[str, Any]
) -> None:
    assert await gql.error_codes(INCREMENT, variables) == ["BAD_USER_INPUT"], case
    assert await gql.error_codes(INCREMENTS, {"increments": [variables]}) == ["BAD_USER_INPUT"]
    assert await top(gql) == []


async def test_username_allows_letters_digits_and_punctuation(gql: GraphQLHttp) -> None:
    for username in ["a", "x" * 64, "Jörg_1.2-3", "名人"]:
        data = await gql.data(INCREMENT, {"username": username, "delta": 1})
        assert data["incrementScore"]["username"] == username


async def test_unknown_board_is_not_found(gql: GraphQLHttp) -> None:
    assert await gql.error_codes(INCREMENT, {"username": "ana", "delta": 1, "board": "x"}) == [
        "NOT_FOUND"
    ]
    assert await gql.error_codes(TOP, {"board": "x"}) == ["NOT_FOUND"]
    assert await gql.error_codes('{ player(username: "a", board: "x") { rank } }') == ["NOT_FOUND"]


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        (TOP, {"limit": 0}),
        (TOP, {"limit": 101}),
        (TOP, {"offset": -1}),
        (NEIGHBORHOOD, {"username": "ana", "radius": -1}),
        (NEIGHBORHOOD, {"username": "ana", "radius": 51}),
        (NEIGHBORHOOD, {"username": "", "radius": 1}),
        (TOP, {"limit": "ten"}),
        (TOP, {"limit": 2**31}),
    ],
)
async def test_bad_read_arguments(gql: GraphQLHttp, query: str, variables: dict[str, Any]) -> None:
    assert await gql.error_codes(query, variables) == ["BAD_USER_INPUT"]


async def test_batch_size_is_bounded(gql: GraphQLHttp) -> None:
    assert await gql.error_codes(INCREMENTS, {"increments": []}) == ["BAD_USER_INPUT"]
    too_many = [{"username": f"p{index}", "delta": 1} for index in range(1001)]
    assert await gql.error_codes(INCREMENTS, {"increments": too_many}) == ["BAD_USER_INPUT"]
    assert await top(gql) == []
    just_enough = [{"username": f"p{index}", "delta": 1} for index in range(1000)]
    data = await gql.data(INCREMENTS, {"increments": just_enough})
    assert len(data["incrementScores"]) == 1000


async def test_score_beyond_exact_range_is_refused(gql: GraphQLHttp, app: Starlette) -> None:
    ceiling = 2**53 - 1
    # Deltas are bounded, so seed a total near the ceiling straight into the live store.
    ranking = app.state.resources.ranking
    board = app.state.resources.service.board("global")
    await ranking.load("global", board.current_period(), [("whale", ceiling - 10)], [])
    increments = [{"username": "minnow", "delta": 1}, {"username": "whale", "delta": 11}]
    assert await gql.error_codes(INCREMENTS, {"increments": increments}) == ["BAD_USER_INPUT"]
    assert await top(gql) == [("whale", ceiling - 10, 1)]
    data = await gql.data(INCREMENT, {"username": "whale", "delta": 10})
    assert data["incrementScore"]["score"] == ceiling


async def test_malformed_documents_get_bad_user_input(gql: GraphQLHttp) -> None:
    assert await gql.error_codes("{ topPlayers(") == ["BAD_USER_INPUT"]
    assert await gql.error_codes("{ noSuchField }") == ["BAD_USER_INPUT"]
    assert await gql.error_codes("{ topPlayers { username password } }") == ["BAD_USER_INPUT"]
