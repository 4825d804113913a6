"""The app's lifespan is exception-safe: a failure at any start-up step leaves no task,
connection pool or Redis connection open (tests/support/leaks.py reads them from /proc)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from starlette.applications import Starlette

from server.app import create_app
from server.resources import Resources
from server.settings import Settings
from tests.support.leaks import open_now, opened_since
from tests.support.shared_services import REDIS_URL

pytestmark = pytest.mark.integration

STEPS = [
    ("history", "connect"),
    ("history", "migrate"),
    ("ranking", "ping"),
    ("batcher", "start"),
    ("recovery", "ensure_loaded"),
    ("live", "start"),
]


class Boom(Exception):
    """The injected start-up failure."""


def make_app(backend: str, redis_prefix: str, mysql_url: str, sqlite_url: str) -> Starlette:
    values: dict[str, Any] = {"write_token": "t", "LEADERBOARD_BOARDS": "global:monthly,a:never"}
    if backend == "redis-mysql":
        values |= {"redis_url": REDIS_URL, "key_prefix": redis_prefix, "database_url": mysql_url}
    else:
        values |= {"database_url": sqlite_url}
    return create_app(Settings(_env_file=None, **values))


def fail_after(step: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """The step, really done (so what it opens is open), then a failure."""

    async def failing(*args: Any, **kwargs: Any) -> Any:
        await step(*args, **kwargs)
        raise Boom

    return failing


@pytest.mark.parametrize("backend", ["embedded", "redis-mysql"])
@pytest.mark.parametrize(("component", "method"), STEPS)
async def test_a_failing_start_up_step_leaves_nothing_open(
    backend: str,
    component: str,
    method: str,
    redis_prefix: str,
    mysql_database_url: str,
    sqlite_database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = open_now()
    app = make_app(backend, redis_prefix, mysql_database_url, sqlite_database_url)
    resources: Resources = app.state.resources
    target = getattr(resources, component)
    monkeypatch.setattr(target, method, fail_after(getattr(target, method)))
    with pytest.raises(Boom):
        async with app.router.lifespan_context(app):
            pytest.fail("the app started despite the failure")
    assert not resources.started
    assert await opened_since(before) == ([], 0)


@pytest.mark.parametrize("backend", ["embedded", "redis-mysql"])
async def test_a_clean_start_and_stop_leaves_nothing_open(
    backend: str, redis_prefix: str, mysql_database_url: str, sqlite_database_url: str
) -> None:
    before = open_now()
    app = make_app(backend, redis_prefix, mysql_database_url, sqlite_database_url)
    async with app.router.lifespan_context(app):
        assert app.state.resources.started
        tasks, connections = await opened_since(before)
        assert tasks  # the batcher and the live feed run
        if backend == "redis-mysql":
            assert connections > 0
    assert not app.state.resources.started
    assert await opened_since(before) == ([], 0)
