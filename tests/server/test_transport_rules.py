"""What an operation may ask for on its transport (server/operation_rules.py, issue 17 E,
F, J): a subscription over HTTP, a document of several operations without operationName,
a mutation over either WebSocket protocol: each a BAD_USER_INPUT error, nothing run, the
metrics not counting it under a field it did not run. And /overlay/{board} is a 404 for a
board the service does not have."""

from __future__ import annotations

import logging

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette

from tests.support.asgi_app import TOKEN, subscription_to
from tests.support.graphql_client import LEGACY_WS, TRANSPORT_WS, GraphQLHttp

pytestmark = pytest.mark.integration

TWO_OPERATIONS = (
    'query Top { topPlayers { username } } mutation Add { incrementScore(username: "ana") '
    "{ score } }"
)


@pytest.fixture
def backend() -> str:
    """In-process stores: the rules apply before any store is asked."""
    return "embedded"


async def operations(http: httpx.AsyncClient) -> dict[tuple[str, str, str], float]:
    """leaderboard_graphql_operations_total by (type, field, code)."""
    text = (await http.get("/metrics")).text
    return {
        (sample.labels["type"], sample.labels["field"], sample.labels["code"]): sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "leaderboard_graphql_operations"
        for sample in family.samples
        if sample.name.endswith("_total")
    }


async def test_a_subscription_over_http_is_the_clients_mistake(
    gql: GraphQLHttp, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    body = await gql.execute("subscription { topPlayersChanged { rank } }")
    assert [error["extensions"]["code"] for error in body["errors"]] == ["BAD_USER_INPUT"]
    assert "WebSocket" in body["errors"][0]["message"]
    assert not caplog.records


async def test_several_operations_need_an_operation_name(
    gql: GraphQLHttp, http: httpx.AsyncClient
) -> None:
    response = await gql.client.post(
        "/graphql", json={"query": TWO_OPERATIONS}, headers={"X-Internal-Token": TOKEN}
    )
    body = response.json()
    assert body["data"] is None
    assert [error["extensions"]["code"] for error in body["errors"]] == ["BAD_USER_INPUT"]
    assert "operation name" in body["errors"][0]["message"]
    # Nothing ran: ana has no score.
    assert (await gql.data('{ player(username: "ana") { score } }'))["player"] is None
    counted = await operations(http)
    assert counted.get(("invalid", "other", "BAD_USER_INPUT")) == 1
    assert not any(field == "topPlayers" for _, field, _ in counted)
    # Named, the same document runs the named operation, counted under its own field.
    named = await gql.client.post(
        "/graphql",
        json={"query": TWO_OPERATIONS, "operationName": "Add"},
        headers={"X-Internal-Token": TOKEN},
    )
    assert named.json() == {"data": {"incrementScore": {"score": 1}}}
    assert (await operations(http)).get(("mutation", "incrementScore", "OK")) == 1


async def test_several_operations_over_get_need_an_operation_name(
    http: httpx.AsyncClient,
) -> None:
    query = "query A { leaderboards { id } } query B { __typename }"
    body = (await http.get("/graphql", params={"query": query})).json()
    assert [error["extensions"]["code"] for error in body["errors"]] == ["BAD_USER_INPUT"]
    named = (await http.get("/graphql", params={"query": query, "operationName": "B"})).json()
    assert named == {"data": {"__typename": "Query"}}


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_mutations_are_refused_alike_on_both_websocket_protocols(
    app: Starlette, gql: GraphQLHttp, protocol: str
) -> None:
    async with subscription_to(app, protocol) as connection:
        await connection.start('mutation { incrementScore(username: "ana") { score } }')
        answer = await connection.next()
        assert [error["extensions"]["code"] for error in answer["errors"]] == ["BAD_USER_INPUT"]
        # Queries run on both.
        await connection.start("{ leaderboards { id } }")
        assert "leaderboards" in (await connection.next())["data"]
    assert (await gql.data('{ player(username: "ana") { score } }'))["player"] is None


async def test_the_overlay_of_an_unknown_board_is_a_404(http: httpx.AsyncClient) -> None:
    assert (await http.get("/overlay/global")).status_code == 200
    missing = await http.get("/overlay/nope")
    assert missing.status_code == 404
    # The same page: its script shows the service's NOT_FOUND error in place.
    assert missing.headers["content-type"].startswith("text/html")
