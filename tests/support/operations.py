"""The contract's operations as documents, and helpers that run them over HTTP."""

from __future__ import annotations

from typing import Any

from tests.support.graphql_client import GraphQLHttp

INCREMENT = """
mutation($username: String!, $delta: Int!, $board: ID! = "global", $eventId: String) {
  incrementScore(username: $username, delta: $delta, board: $board, eventId: $eventId) {
    username board period score rank applied
  }
}"""


INCREMENTS = """
mutation($increments: [ScoreIncrement!]!) {
  incrementScores(increments: $increments) { username board score rank applied }
}"""


TOP = """
query($board: ID! = "global", $limit: Int! = 10, $offset: Int! = 0, $period: String) {
  topPlayers(board: $board, limit: $limit, offset: $offset, period: $period) { username score rank }
}"""


PLAYER = """
query($username: String!, $board: ID! = "global", $period: String) {
  player(username: $username, board: $board, period: $period) { username score rank }
}"""


NEIGHBORHOOD = """
query($username: String!, $radius: Int! = 5) {
  neighborhood(username: $username, radius: $radius) { username score rank }
}"""


async def score(gql: GraphQLHttp, username: str, delta: int, **variables: Any) -> dict[str, Any]:
    data = await gql.data(INCREMENT, {"username": username, "delta": delta, **variables})
    result: dict[str, Any] = data["incrementScore"]
    return result


async def top(gql: GraphQLHttp, **variables: Any) -> list[tuple[str, int, int]]:
    data = await gql.data(TOP, variables)
    return [(row["username"], row["score"], row["rank"]) for row in data["topPlayers"]]


RANK_CHANGED = """
subscription($username: String!, $board: ID! = "global") {
  rankChanged(username: $username, board: $board) { username board period score rank previousRank }
}"""


TOP_CHANGED = """
subscription($limit: Int! = 3, $board: ID! = "global") {
  topPlayersChanged(limit: $limit, board: $board) { username score rank }
}"""
