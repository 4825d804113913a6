"""The app's wiring of `big_document_chars` (issue 17): the hot operations' shortcuts do not
parse a document over it (it is parsed once, by Strawberry, in its turn), and the schema
runs such documents one at a time (tests/schema/test_big_documents.py)."""

from __future__ import annotations

from typing import Any

import graphql
import httpx
import pytest
from starlette.applications import Starlette

import schema.plans
from tests.support.documents import padded_document

pytestmark = pytest.mark.integration

BIG = 1_024
TOP = "{ topPlayers(limit: 1) { username } }"
LIVE = "subscription { topPlayersChanged(limit: 1) { username } }"


@pytest.fixture
def backend() -> str:
    """In-process stores: planning does not depend on them."""
    return "embedded"


@pytest.fixture
def setting_overrides() -> dict[str, Any]:
    """A bound below the default, so the test shows it is the setting that counts."""
    return {"big_document_chars": BIG}


async def test_the_shortcuts_do_not_parse_big_documents(
    app: Starlette, monkeypatch: pytest.MonkeyPatch
) -> None:
    app_graphql = app.state.graphql
    assert app_graphql.schema.big_document_chars == BIG
    parsed: list[int] = []
    original = graphql.parse

    def counting_parse(source: str, **options: Any) -> Any:
        parsed.append(len(source))
        return original(source, **options)

    monkeypatch.setattr(schema.plans, "parse", counting_parse)
    for planner, head in ((app_graphql.fast_path, TOP), (app_graphql.fast_subscriptions, LIVE)):
        assert planner.plan(padded_document(head, BIG + 1), None) is None
        assert planner.plan(padded_document(head, BIG), None) is not None
    assert parsed == [BIG, BIG]


async def test_a_big_document_is_answered_by_the_normal_path(http: httpx.AsyncClient) -> None:
    response = await http.post("/graphql", json={"query": padded_document(TOP, BIG + 1)})
    assert response.status_code == 200
    assert response.json() == {"data": {"topPlayers": []}}
