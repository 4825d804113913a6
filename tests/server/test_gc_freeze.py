"""A `leaderboard serve` process exempts its start-up objects from the cyclic GC (and collects
young objects less often); an app built inside a process that builds many (the tests) does
not."""

from __future__ import annotations

import gc
import importlib
from typing import Any

import pytest
import uvicorn

from server import cli
from server.app import create_app, create_serving_app
from server.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture
def embedded_settings(sqlite_database_url: str) -> Settings:
    """An embedded app's settings."""
    return Settings(_env_file=None, database_url=sqlite_database_url, write_token="t")


async def test_a_serving_app_freezes_what_start_up_made(embedded_settings: Settings) -> None:
    assert gc.get_freeze_count() == 0
    thresholds = gc.get_threshold()
    app = create_app(embedded_settings, freeze_after_start=True)
    try:
        async with app.router.lifespan_context(app):
            assert gc.get_freeze_count() > 0
            # Young collections rarer: the write buffer's events are not walked every ~700.
            assert gc.get_threshold() == (10_000, *thresholds[1:])
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


async def test_an_app_freezes_nothing_by_default(embedded_settings: Settings) -> None:
    app = create_app(embedded_settings)
    async with app.router.lifespan_context(app):
        assert gc.get_freeze_count() == 0
        assert gc.get_threshold()[0] == 700  # CPython's default, kept


def test_serve_runs_the_freezing_factory(
    embedded_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[Any, dict[str, Any]]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: calls.append((app, options)))
    assert cli.serve(embedded_settings, "127.0.0.1", 0, 1, access_log=False) == 0
    ((target, options),) = calls
    module, _, name = str(target).partition(":")
    assert getattr(importlib.import_module(module), name) is create_serving_app
    assert options["factory"] is True
