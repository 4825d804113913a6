"""Real-browser tests: Debian's Chromium driven by Playwright, against `leaderboard serve`.

Chromium must be installed (`apt-get install chromium`): without it these tests fail, they
never skip. Playwright's own browser downloads are not used.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.support.browser import ScreenshotPath, Services
from tests.support.graphql_client import GraphQLHttp
from tests.support.overlay_scene import TOKEN
from tests.support.service_process import ServiceProcess

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "browser"
"""Screenshots of every browser test (gitignored)."""

# Reconnections back off for up to ~10 s; every other expectation comes much faster.
expect.set_options(timeout=20_000)


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[Services]:
    """Start services; all are killed at the end of the test."""
    directory = tmp_path / "service"
    directory.mkdir()
    started = Services(directory)
    try:
        yield started
    finally:
        await started.close()


@pytest.fixture
async def service(services: Services) -> ServiceProcess:
    """One service with the default settings (introspection on)."""
    return await services.start()


@pytest.fixture
async def gql(service: ServiceProcess) -> AsyncIterator[GraphQLHttp]:
    """A GraphQL client of `service` holding the write token."""
    async with httpx.AsyncClient(base_url=service.url) as client:
        yield GraphQLHttp(client, token=TOKEN)


@pytest.fixture
def chromium() -> Path:
    """Debian's Chromium; the test fails (never skips) when it is missing."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)")
    return CHROMIUM


@pytest.fixture
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    """Headless Chromium from the system."""
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A fresh page; an uncaught script error on it fails the test."""
    context = await browser.new_context(
        viewport={"width": 1280, "height": 900}, locale="en-US", reduced_motion="no-preference"
    )
    opened = await context.new_page()
    script_errors: list[str] = []
    opened.on("pageerror", lambda error: script_errors.append(str(error)))
    try:
        yield opened
    finally:
        await context.close()
    assert not script_errors, script_errors


@pytest.fixture
def screenshot_path(request: pytest.FixtureRequest) -> ScreenshotPath:
    """Where this test saves a screenshot: test-artifacts/browser/<test>-<name>.png."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    test_name: str = request.node.originalname

    def path(name: str) -> Path:
        return ARTIFACTS / f"{test_name}-{re.sub(r'[^A-Za-z0-9_.-]+', '-', name)}.png"

    return path
