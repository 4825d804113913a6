"""The Python `gql` client against a real service: queries, mutations, subscriptions, errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportQueryError
from gql.transport.httpx import HTTPXAsyncTransport
from gql.transport.websockets import WebsocketsTransport

from tests.support.operations import INCREMENT, INCREMENTS, TOP_CHANGED
from tests.support.service_fixtures import TOKEN, ProcessFactory
from tests.support.service_process import ServiceProcess

pytestmark = pytest.mark.integration

READ_EVERYTHING = """
query($username: String!) {
  leaderboards { id reset currentPeriod playerCount }
  topPlayers(limit: 10) { username score rank }
  player(username: $username) { username score rank }
  neighborhood(username: $username, radius: 1) { username score rank }
}"""
RANK_CHANGED = """
subscription($username: String!) {
  rankChanged(username: $username) { username board score rank previousRank }
}"""

Json = dict[str, Any]


def request(document: str, **variables: Any) -> GraphQLRequest:
    """A gql request with its variables."""
    return GraphQLRequest(document, variable_values=variables)


def error_codes(error: TransportQueryError) -> list[str]:
    """The extensions.code of every GraphQL error the client raised."""
    return [entry["extensions"]["code"] for entry in error.errors or []]


@pytest.fixture
async def service(
    service_process: ProcessFactory, redis_mysql_environment: dict[str, str]
) -> ServiceProcess:
    """A running `leaderboard serve` on Redis + MariaDB."""
    process = service_process(redis_mysql_environment)
    await process.start()
    return process


def http_client(service: ServiceProcess, headers: dict[str, str] | None = None) -> Client:
    """A gql client over HTTP that validates documents against the introspected schema."""
    transport = HTTPXAsyncTransport(url=f"{service.url}/graphql", headers=headers or {})
    return Client(transport=transport, fetch_schema_from_transport=True)


async def test_queries_and_both_mutations_with_either_token_header(
    service: ServiceProcess,
) -> None:
    async with http_client(service, {"X-Internal-Token": TOKEN}) as session:
        first: Json = await session.execute(
            request(INCREMENT, username="ana", delta=12, eventId="gql-1")
        )
        assert first["incrementScore"] == {
            "username": "ana",
            "board": "global",
            "period": first["incrementScore"]["period"],
            "score": 12,
            "rank": 1,
            "applied": True,
        }
        again: Json = await session.execute(
            request(INCREMENT, username="ana", delta=12, eventId="gql-1")
        )
        assert (again["incrementScore"]["score"], again["incrementScore"]["applied"]) == (12, False)

    async with http_client(service, {"Authorization": f"Bearer {TOKEN}"}) as session:
        batch: Json = await session.execute(
            request(
                INCREMENTS,
                increments=[
                    {"username": "bo", "delta": 20},
                    {"username": "cy", "delta": 5, "eventId": "gql-2"},
                ],
            )
        )
        assert [
            (row["username"], row["score"], row["rank"]) for row in batch["incrementScores"]
        ] == [
            ("bo", 20, 1),
            ("cy", 5, 3),
        ]

    async with http_client(service) as session:
        data: Json = await session.execute(request(READ_EVERYTHING, username="ana"))
    boards = {board["id"]: board for board in data["leaderboards"]}
    assert boards["global"]["reset"] == "MONTHLY"
    assert boards["global"]["playerCount"] == 3
    assert [(row["username"], row["score"], row["rank"]) for row in data["topPlayers"]] == [
        ("bo", 20, 1),
        ("ana", 12, 2),
        ("cy", 5, 3),
    ]
    assert data["player"] == {"username": "ana", "score": 12, "rank": 2}
    assert [row["username"] for row in data["neighborhood"]] == ["bo", "ana", "cy"]


async def test_errors_reach_the_client_with_their_code(service: ServiceProcess) -> None:
    async with http_client(service) as session:
        with pytest.raises(TransportQueryError) as unauthenticated:
            await session.execute(request(INCREMENT, username="ana", delta=1))
        assert error_codes(unauthenticated.value) == ["UNAUTHENTICATED"]

    async with http_client(service, {"X-Internal-Token": TOKEN}) as session:
        with pytest.raises(TransportQueryError) as bad_username:
            await session.execute(request(INCREMENT, username="not a name!", delta=1))
        assert error_codes(bad_username.value) == ["BAD_USER_INPUT"]
        with pytest.raises(TransportQueryError) as zero_delta:
            await session.execute(request(INCREMENT, username="ana", delta=0))
        assert error_codes(zero_delta.value) == ["BAD_USER_INPUT"]
        # A rejected request changes nothing.
        nobody: Json = await session.execute(request(READ_EVERYTHING, username="ana"))
        assert nobody["topPlayers"] == []


@pytest.fixture(params=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL, "graphql-ws"])
def subprotocol(request: pytest.FixtureRequest) -> str:
    """Both subscription protocols the service speaks (gql names them transport and Apollo)."""
    value: str = request.param
    return value


@pytest.fixture
async def websocket_session(service: ServiceProcess, subprotocol: str) -> AsyncIterator[Any]:
    """A gql session over WebSocket in one protocol."""
    transport = WebsocketsTransport(
        url=service.url.replace("http://", "ws://", 1) + "/graphql", subprotocols=[subprotocol]
    )
    async with Client(transport=transport) as session:
        yield session


async def test_subscription_receives_the_change_a_mutation_causes(
    service: ServiceProcess, websocket_session: Any
) -> None:
    async with http_client(service, {"X-Internal-Token": TOKEN}) as writer:
        await writer.execute(request(INCREMENT, username="ana", delta=10))
        updates = websocket_session.subscribe(request(RANK_CHANGED, username="ana"))
        try:
            # ana's standing comes first: the subscription is live from then on.
            now: Json = await asyncio.wait_for(anext(updates), 10)
            assert now["rankChanged"] == {
                "username": "ana",
                "board": "global",
                "score": 10,
                "rank": 1,
                "previousRank": None,
            }
            await writer.execute(request(INCREMENT, username="bo", delta=15))
            passed: Json = await asyncio.wait_for(anext(updates), 10)
            assert (
                passed["rankChanged"]["rank"],
                passed["rankChanged"]["previousRank"],
                passed["rankChanged"]["score"],
            ) == (2, 1, 10)
        finally:
            await updates.aclose()


async def test_subscription_errors_reach_the_client_with_their_code(
    websocket_session: Any,
) -> None:
    updates = websocket_session.subscribe(request(TOP_CHANGED, limit=0))
    try:
        with pytest.raises(TransportQueryError) as refused:
            await asyncio.wait_for(anext(updates), 10)
        assert error_codes(refused.value) == ["BAD_USER_INPUT"]
    finally:
        await updates.aclose()
