"""Regenerate docs/overlay.png: the live overlay, dark theme, ten players, one highlighted.

Run from the repository root, with the dev install and Debian's Chromium:

    .venv/bin/python docs/make_overlay_screenshot.py

It starts its own `leaderboard serve` (embedded store, in a temporary directory), fills a
board through the API, lets the highlighted player climb two places and photographs the
overlay once the rows have settled.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import httpx
from playwright.async_api import async_playwright, expect

from tests.browser.conftest import CHROMIUM
from tests.browser.overlay_scene import (
    BOARDS,
    DEMO_HIGHLIGHT,
    DEMO_SCORES,
    TOKEN,
    add_scores,
    animations_settled,
    overlay_url,
)
from tests.support.graphql_client import GraphQLHttp
from tests.support.service_process import ServiceProcess

OUTPUT = Path(__file__).with_name("overlay.png")


async def make_screenshot(output: Path) -> None:
    """Start a service, fill the board, photograph the overlay into `output`."""
    with tempfile.TemporaryDirectory() as directory:
        service = ServiceProcess(
            {"LEADERBOARD_WRITE_TOKEN": TOKEN, "LEADERBOARD_BOARDS": BOARDS},
            Path(directory) / "service.log",
        )
        async with (
            service,
            httpx.AsyncClient(base_url=service.url) as client,
            async_playwright() as playwright,
        ):
            gql = GraphQLHttp(client, token=TOKEN)
            await add_scores(gql, DEMO_SCORES)
            browser = await playwright.chromium.launch(executable_path=CHROMIUM)
            page = await browser.new_page(
                viewport={"width": 520, "height": 700}, device_scale_factor=2, locale="en-US"
            )
            await page.goto(overlay_url(service.url, theme="dark", highlight=DEMO_HIGHLIGHT))
            names = page.locator("#rows .overlay-name")
            await expect(names).to_have_count(len(DEMO_SCORES))
            await expect(page.locator("#status")).to_have_attribute("data-state", "live")

            # The highlighted player climbs from 4th to 2nd.
            await add_scores(gql, {DEMO_HIGHLIGHT: 1300})
            await expect(names.nth(1)).to_have_text(DEMO_HIGHLIGHT)
            await animations_settled(page)
            await page.locator(".overlay").screenshot(path=output)
            await browser.close()
    print(f"wrote {output}")


if __name__ == "__main__":
    asyncio.run(make_screenshot(OUTPUT))
