"""The GraphQL documents the benchmark sends, and ready request bytes for them.

Like real clients, every request sends one fixed document with variables: the document
text is the same for every request of a kind (what a game server's client library does),
so the service's parser and validation caches see what they would see in production.
The naive app gets the same shape of documents (it has no caches to hit anyway).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from benchmarks.loadgen import Request, http_post

INCREMENT = (
    "mutation Inc($u: String!, $d: Int!, $b: ID!) "
    "{ incrementScore(username: $u, delta: $d, board: $b) { score rank } }"
)
INCREMENTS = (
    "mutation Batch($i: [ScoreIncrement!]!) { incrementScores(increments: $i) { applied } }"
)
TOP = "query Top($b: ID!) { topPlayers(board: $b, limit: 10) { username score rank } }"
PLAYER = "query Player($u: String!, $b: ID!) { player(username: $u, board: $b) { score rank } }"
NEIGHBORHOOD = (
    "query Near($u: String!, $b: ID!) "
    "{ neighborhood(username: $u, radius: 5, board: $b) { username score rank } }"
)
RANK_CHANGED = (
    "subscription Rank($u: String!, $b: ID!) "
    "{ rankChanged(username: $u, board: $b) { score rank previousRank } }"
)
TOP_CHANGED = (
    "subscription TopLive($b: ID!) { topPlayersChanged(board: $b, limit: 10) { username score } }"
)

NAIVE_INCREMENT = (
    "mutation Inc($u: String!, $d: Int!, $b: String!) "
    "{ incrementScore(username: $u, delta: $d, board: $b) { score } }"
)
NAIVE_TOP = "query Top($b: String!) { topPlayers(board: $b, limit: 10) { username score } }"


def body(query: str, variables: dict[str, Any]) -> bytes:
    """A GraphQL POST body."""
    return orjson.dumps({"query": query, "variables": variables})


def post(query: str, variables: dict[str, Any], token: str | None = None) -> bytes:
    """Ready bytes of a POST /graphql."""
    headers = {"X-Internal-Token": token} if token else None
    return http_post("/graphql", body(query, variables), headers)


def cycling(requests: Sequence[Request]) -> Callable[[], Request]:
    """A next-request function that walks a list of ready requests round and round."""
    position = -1
    count = len(requests)

    def next_request() -> Request:
        nonlocal position
        position = (position + 1) % count
        return requests[position]

    return next_request


def increments(
    board: str,
    usernames: Sequence[str],
    token: str | None,
    *,
    count: int = 4096,
    naive: bool = False,
    seed: int = 1,
) -> list[Request]:
    """Ready single-increment requests for random players; meta = (username, delta)."""
    chooser = random.Random(seed)
    document = NAIVE_INCREMENT if naive else INCREMENT
    ready: list[Request] = []
    for _ in range(count):
        username = chooser.choice(usernames)
        delta = chooser.randint(1, 9)
        ready.append(
            (post(document, {"u": username, "d": delta, "b": board}, token), (username, delta))
        )
    return ready


def batches(
    board: str,
    usernames: Sequence[str],
    token: str,
    *,
    size: int,
    count: int,
    seed: int = 2,
) -> list[Request]:
    """Ready incrementScores requests of `size` increments each; meta = sum of the deltas."""
    chooser = random.Random(seed)
    ready: list[Request] = []
    for _ in range(count):
        deltas = [chooser.randint(1, 9) for _ in range(size)]
        items = [
            {"username": chooser.choice(usernames), "delta": delta, "board": board}
            for delta in deltas
        ]
        total = sum(deltas)
        ready.append((post(INCREMENTS, {"i": items}, token), (size, total)))
    return ready


def reads(
    document: str, board: str, usernames: Sequence[str] | None, *, count: int = 4096, seed: int = 3
) -> list[Request]:
    """Ready read requests; with `usernames`, for random players of them."""
    if usernames is None:
        return [(post(document, {"b": board}), None)]
    chooser = random.Random(seed)
    return [
        (post(document, {"u": chooser.choice(usernames), "b": board}), None) for _ in range(count)
    ]
