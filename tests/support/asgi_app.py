"""Shared fixtures for the ASGI app on each backend (embedded, Redis + MariaDB), with HTTP and
WebSocket clients: a pytest plugin the root conftest loads."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from httpx_ws import AsyncWebSocketSession, WebSocketDisconnect, aconnect_ws
from httpx_ws.transport import ASGIWebSocketTransport
from starlette.applications import Starlette

from server.app import create_app
from server.settings import Settings
from tests.support.graphql_client import TRANSPORT_WS, GraphQLHttp, Subscription
from tests.support.shared_services import REDIS_URL

TOKEN = "test-write-token"
BOARDS = "global:monthly,daily-race:daily,alltime:never"


def make_settings(
    backend: str, *, redis_prefix: str, mysql_url: str, sqlite_url: str, **overrides: Any
) -> Settings:
    """Settings for a test app on one backend, fast timings, explicit token."""
    values: dict[str, Any] = {
        "write_token": TOKEN,
        "LEADERBOARD_BOARDS": BOARDS,
        "flush_interval_ms": 20,
        "heartbeat_seconds": 0.05,
        "heartbeat_timeout_seconds": 2.0,
        "resync_interval_seconds": 0.5,
    }
    if backend == "redis-mysql":
        values |= {"redis_url": REDIS_URL, "key_prefix": redis_prefix, "database_url": mysql_url}
    else:
        values |= {"database_url": sqlite_url}
    return Settings(_env_file=None, **(values | overrides))


@pytest.fixture(params=["embedded", "redis-mysql"])
def backend(request: pytest.FixtureRequest) -> str:
    """Which stores the app runs on."""
    return str(request.param)


@pytest.fixture
def setting_overrides() -> dict[str, Any]:
    """Settings that differ from `make_settings`' for a test module: override this fixture."""
    return {}


@pytest.fixture
def settings(
    backend: str,
    redis_prefix: str,
    mysql_database_url: str,
    sqlite_database_url: str,
    setting_overrides: dict[str, Any],
) -> Settings:
    """The app's settings on the backend under test."""
    return make_settings(
        backend,
        redis_prefix=redis_prefix,
        mysql_url=mysql_database_url,
        sqlite_url=sqlite_database_url,
        **setting_overrides,
    )


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Starlette]:
    """The running app: its lifespan has started every resource and stops them after."""
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def http(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to the app in-process."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app), base_url="http://testserver"
    ) as client:
        yield client


@contextlib.asynccontextmanager
async def subscription_to(app: Starlette, protocol: str) -> AsyncIterator[Subscription]:
    """A GraphQL WebSocket connection to the app in one protocol, initialised.

    A context manager, not a fixture: its task group must be left in the task that entered it.
    """
    transport = ASGIWebSocketTransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        connecting: contextlib.AbstractAsyncContextManager[AsyncWebSocketSession] = aconnect_ws(
            "/graphql", client, subprotocols=[protocol]
        )
        async with connecting as socket:
            assert socket.subprotocol == protocol
            connection = Subscription(socket, protocol)
            await connection.init()
            yield connection


@pytest.fixture
def gql(http: httpx.AsyncClient) -> GraphQLHttp:
    """A GraphQL client that presents the write token."""
    return GraphQLHttp(http, token=TOKEN)


@contextlib.asynccontextmanager
async def websocket(
    app: Starlette, protocol: str, headers: dict[str, str] | None = None
) -> AsyncIterator[Subscription]:
    async with (
        httpx.AsyncClient(
            transport=ASGIWebSocketTransport(app), base_url="http://testserver"
        ) as client,
        aconnect_ws(
            "/graphql",
            client,
            subprotocols=[protocol],
            session_class=AsyncWebSocketSession,
            headers=headers or {},
        ) as socket,
    ):
        connection = Subscription(socket, protocol)
        await connection.init()
        yield connection


async def refusal_code(app: Starlette) -> int | None:
    """The close code of a WebSocket the app refused, None when it was accepted."""
    codes: list[int] = []
    try:
        async with websocket(app, TRANSPORT_WS):
            pass
    except* WebSocketDisconnect as group:
        codes.extend(
            error.code for error in group.exceptions if isinstance(error, WebSocketDisconnect)
        )
    return codes[0] if codes else None
