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
from schema.documents import MAX_DOCUMENT_CHARS
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


CAP = MAX_DOCUMENT_CHARS


def _counting_decodes(app: Starlette, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The lengths of the bodies Strawberry's view decodes (the normal path's JSON)."""
    app_graphql = app.state.graphql
    decoded: list[int] = []
    original = app_graphql.decode_json

    def counting(data: str | bytes) -> object:
        decoded.append(len(data))
        return original(data)

    monkeypatch.setattr(app_graphql, "decode_json", counting)
    return decoded


async def test_a_document_over_the_cap_is_refused_from_the_body_decoded_once(
    app: Starlette, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 8 clients sending 255 KB refused documents held others' p50 at 26-30 ms: each body
    # was decoded by the shortcut, then again by Strawberry's view to be refused.
    decoded = _counting_decodes(app, monkeypatch)
    for length in (CAP + 1, 255_000):
        query = padded_document(TOP, length)
        posted = await http.post("/graphql", json={"query": query, "variables": {"b": "x"}})
        if length == CAP + 1:
            # The answer the normal path gives (a GET is never shortcut; not 255 KB long).
            normal = await http.get("/graphql", params={"query": query})
            assert (posted.status_code, posted.json()) == (normal.status_code, normal.json())
            assert posted.headers["content-type"] == normal.headers["content-type"]
        assert posted.status_code == 200
        assert posted.json() == {
            "data": None,
            "errors": [
                {
                    "message": f"document of {length} characters is larger than the limit "
                    f"of {CAP} (comments and strings included)",
                    "extensions": {"code": "BAD_USER_INPUT"},
                }
            ],
        }
    assert decoded == []


@pytest.mark.parametrize(
    ("extra", "headers", "expected"),
    [
        ({"variables": 5}, {}, "`variables` must be an object"),
        ({"extensions": "x"}, {}, "`extensions` must be an object"),
    ],
)
async def test_what_the_normal_path_answers_first_still_takes_it(
    app: Starlette,
    http: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
    extra: dict[str, Any],
    headers: dict[str, str],
    expected: str,
) -> None:
    decoded = _counting_decodes(app, monkeypatch)
    body = {"query": padded_document(TOP, CAP + 1), **extra}
    response = await http.post("/graphql", json=body, headers=headers)
    assert expected in response.text
    assert len(decoded) == 1


async def test_a_body_over_the_cap_with_a_document_within_it_is_answered(
    http: httpx.AsyncClient,
) -> None:
    # Only the body's bytes are over the cap: its variables are big, not its document.
    query = "query($u: String!) { player(username: $u) { rank } }"
    body = {"query": query, "variables": {"u": "x" * (CAP + 1)}}
    response = await http.post("/graphql", json=body)
    assert response.status_code == 200
    assert "larger than the limit" not in response.text
