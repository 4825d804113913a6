"""Every query and mutation of the contract over HTTP, on both backends."""

from __future__ import annotations

import pytest

from tests.support.asgi_app import TOKEN
from tests.support.graphql_client import GraphQLHttp
from tests.support.operations import INCREMENT, INCREMENTS, NEIGHBORHOOD, PLAYER, TOP, score, top

pytestmark = pytest.mark.integration


async def test_leaderboards_lists_the_configured_boards(gql: GraphQLHttp) -> None:
    await score(gql, "ana", 3)
    data = await gql.data("{ leaderboards { id reset currentPeriod playerCount } }")
    boards = {board["id"]: board for board in data["leaderboards"]}
    assert {board["reset"] for board in boards.values()} == {"MONTHLY", "DAILY", "NEVER"}
    assert boards["alltime"]["currentPeriod"] == "all"
    assert boards["global"]["playerCount"] == 1
    assert boards["daily-race"]["playerCount"] == 0


async def test_increment_score_adds_and_ranks(gql: GraphQLHttp) -> None:
    first = await score(gql, "ana", 5)
    assert first["score"] == 5
    assert first["rank"] == 1
    assert first["applied"] is True
    assert first["board"] == "global"
    await score(gql, "bo", 7)
    second = await score(gql, "ana", -1)
    assert (second["score"], second["rank"]) == (4, 2)
    default_delta = await gql.data('mutation { incrementScore(username: "cy") { score } }')
    assert default_delta["incrementScore"]["score"] == 1


RANK_THROUGH_FRAGMENTS = """
mutation($items: [ScoreIncrement!]!) {
  one: incrementScore(username: "ana", delta: 5) { ...Placed }
  many: incrementScores(increments: $items) { ... on ScoreUpdate { score rank } }
}
fragment Placed on ScoreUpdate { score rank }
"""


async def test_a_rank_selected_through_fragments_is_computed(gql: GraphQLHttp) -> None:
    # Strawberry's path (fragments, two fields): the ranks are computed only when selected,
    # and a fragment's selection counts.
    await score(gql, "bo", 7)
    data = await gql.data(
        RANK_THROUGH_FRAGMENTS,
        {"items": [{"username": "cy", "delta": 9}, {"username": "ana", "delta": 1}]},
    )
    assert data["one"] == {"score": 5, "rank": 2}
    assert data["many"] == [{"score": 9, "rank": 1}, {"score": 6, "rank": 3}]


async def test_ties_share_a_rank_and_list_by_username(gql: GraphQLHttp) -> None:
    for username, delta in [("dee", 5), ("cal", 20), ("ann", 10), ("bea", 20)]:
        await score(gql, username, delta)
    assert await top(gql) == [("bea", 20, 1), ("cal", 20, 1), ("ann", 10, 3), ("dee", 5, 4)]
    assert await top(gql, limit=2, offset=1) == [("cal", 20, 1), ("ann", 10, 3)]
    assert await top(gql, offset=10) == []


async def test_player_and_unknown_player(gql: GraphQLHttp) -> None:
    await score(gql, "ana", 10)
    await score(gql, "bo", 10)
    await score(gql, "cy", 30)
    data = await gql.data(PLAYER, {"username": "bo"})
    assert data["player"] == {"username": "bo", "score": 10, "rank": 2}
    assert (await gql.data(PLAYER, {"username": "nobody"}))["player"] is None


async def test_neighborhood_at_both_ends_and_in_the_middle(gql: GraphQLHttp) -> None:
    for index in range(10):
        await score(gql, f"p{index}", (index + 1) * 10)  # p9 best, p0 last

    async def around(username: str, radius: int) -> list[str]:
        data = await gql.data(NEIGHBORHOOD, {"username": username, "radius": radius})
        return [row["username"] for row in data["neighborhood"]]

    assert await around("p9", 2) == ["p9", "p8", "p7"]
    assert await around("p0", 2) == ["p2", "p1", "p0"]
    assert await around("p5", 1) == ["p6", "p5", "p4"]
    assert await around("p5", 0) == ["p5"]
    assert await around("nobody", 3) == []
    ranks = await gql.data(NEIGHBORHOOD, {"username": "p5", "radius": 1})
    assert [row["rank"] for row in ranks["neighborhood"]] == [4, 5, 6]


async def test_event_id_makes_an_increment_idempotent(gql: GraphQLHttp) -> None:
    first = await score(gql, "ana", 5, eventId="match-1:kill-7")
    again = await score(gql, "ana", 5, eventId="match-1:kill-7")
    assert first["applied"] is True
    assert again["applied"] is False
    assert again["score"] == 5
    other = await score(gql, "ana", 5, eventId="match-1:kill-8")
    assert (other["applied"], other["score"]) == (True, 10)


async def test_increment_scores_applies_in_order(gql: GraphQLHttp) -> None:
    increments = [
        {"username": "ana", "delta": 5},
        {"username": "bo", "delta": 3},
        {"username": "ana", "delta": -2, "eventId": "e1"},
        # The same increment again (another increment under the id is refused elsewhere).
        {"username": "ana", "delta": -2, "eventId": "e1"},
        {"username": "cy", "delta": 1, "board": "alltime"},
    ]
    data = await gql.data(INCREMENTS, {"increments": increments})
    updates = [
        (u["username"], u["board"], u["score"], u["applied"]) for u in data["incrementScores"]
    ]
    assert updates == [
        ("ana", "global", 5, True),
        ("bo", "global", 3, True),
        ("ana", "global", 3, True),
        ("ana", "global", 3, False),
        ("cy", "alltime", 1, True),
    ]
    assert await top(gql, board="alltime") == [("cy", 1, 1)]


async def test_increment_scores_is_all_or_nothing(gql: GraphQLHttp) -> None:
    await score(gql, "ana", 1)
    increments = [
        {"username": "ana", "delta": 5},
        {"username": "bo", "delta": 5},
        {"username": "bad name!", "delta": 5},
    ]
    assert await gql.error_codes(INCREMENTS, {"increments": increments}) == ["BAD_USER_INPUT"]
    unknown_board = [
        {"username": "ana", "delta": 5},
        {"username": "bo", "delta": 1, "board": "nope"},
    ]
    assert await gql.error_codes(INCREMENTS, {"increments": unknown_board}) == ["NOT_FOUND"]
    assert await top(gql) == [("ana", 1, 1)]


async def test_mutations_need_the_write_token(gql: GraphQLHttp) -> None:
    variables = {"username": "ana", "delta": 5}
    assert await gql.error_codes(INCREMENT, variables, token="") == ["UNAUTHENTICATED"]
    assert await gql.error_codes(INCREMENT, variables, token="wrong") == ["UNAUTHENTICATED"]
    batch = {"increments": [variables]}
    assert await gql.error_codes(INCREMENTS, batch, token="") == ["UNAUTHENTICATED"]
    assert await top(gql) == []
    response = await gql.client.post(
        "/graphql",
        json={"query": INCREMENT, "variables": variables},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert response.json()["data"]["incrementScore"]["score"] == 5


async def test_past_and_invalid_periods(gql: GraphQLHttp) -> None:
    await score(gql, "ana", 5)
    assert await top(gql, period="2001-01") == []
    assert (await gql.data(PLAYER, {"username": "ana", "period": "2001-01"}))["player"] is None
    for period in ["2026-13", "2026-11-23", "latest", "2026-W48", ""]:
        assert await gql.error_codes(TOP, {"period": period}) == ["BAD_USER_INPUT"], period
    assert await gql.error_codes(TOP, {"board": "alltime", "period": "2026-11"}) == [
        "BAD_USER_INPUT"
    ]
    assert await top(gql, board="alltime", period="all") == []
