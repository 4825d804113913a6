"""The Strawberry seams the service relies on (server/websocket.py) still hold.

The WebSocket handlers must run operations through their `schema` attribute's public
`stream` (graphql-transport-ws) or `subscribe` (legacy graphql-ws), and send each result
as `{"data": result.data}` through `send_message`: that is how the subscriptions' shortcut
takes over a stream. A Strawberry release that changes either fails here, not in
production, and the version range in pyproject.toml is what these tests ran on.
"""

from __future__ import annotations

import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from starlette.applications import Starlette

from schema.context import ApiContext
from schema.fast_subscriptions import FastSubscriptions, Payloads
from tests.support.asgi_app import subscription_to
from tests.support.graphql_client import LEGACY_WS, TRANSPORT_WS

pytestmark = pytest.mark.integration

TOP = "subscription { topPlayersChanged(limit: 2) { username score rank } }"
PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


@pytest.fixture
def backend() -> str:
    """In-process stores: the seams do not depend on them."""
    return "embedded"


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_the_handlers_stream_the_shortcuts_payloads(
    app: Starlette, protocol: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast: FastSubscriptions = app.state.graphql.fast_subscriptions
    opened: list[bool] = []
    original_open = fast.open

    def recording_open(
        context: ApiContext, query: object, variables: object, name: object
    ) -> Payloads | None:
        payloads = original_open(context, query, variables, name)
        opened.append(payloads is not None)
        return payloads

    monkeypatch.setattr(fast, "open", recording_open)
    async with subscription_to(app, protocol) as subscription:
        await subscription.start(TOP)
        first = await subscription.next()
    # The shortcut was asked and took the document, and its JSON reached the client as the
    # whole payload (not wrapped in another {"data": ...}).
    assert opened == [True]
    assert first == {"data": {"topPlayersChanged": []}}


def test_the_installed_strawberry_is_in_the_range_the_seams_were_tested_on() -> None:
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    (strawberry,) = (
        Requirement(line) for line in dependencies if line.startswith("strawberry-graphql")
    )
    assert strawberry.specifier.contains(version("strawberry-graphql"))
    # An upper bound: a release the seams were not tested on is not installed silently.
    assert any(spec.operator in ("<", "<=", "==", "~=") for spec in strawberry.specifier)
