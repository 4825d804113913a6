"""The live overlay in a real browser: live data, moves, errors, themes, reconnection."""

from __future__ import annotations

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.support.browser import ScreenshotPath, Services
from tests.support.graphql_client import GraphQLHttp
from tests.support.overlay_scene import (
    TOKEN,
    add_scores,
    animations_settled,
    current_period,
    overlay_url,
)
from tests.support.service_process import ServiceProcess

pytestmark = pytest.mark.browser

NAMES = "#rows .overlay-name"
SCORES = "#rows .overlay-score"
STATUS = "#status"

# Records which rows start a slide (the FLIP animation) into window.slid.
RECORD_SLIDES = """
window.slid = [];
document.addEventListener("transitionrun", (event) => {
  if (event.propertyName === "transform") window.slid.push(event.target.dataset.username);
});
"""


async def test_overlay_shows_the_top_players_and_follows_every_change(
    service: ServiceProcess, gql: GraphQLHttp, page: Page, screenshot_path: ScreenshotPath
) -> None:
    await add_scores(gql, {"ana": 50, "bo": 40, "cy": 30, "dee": 20, "eve": 10})
    await page.goto(overlay_url(service.url, limit=4, highlight="dee"))

    await expect(page.locator(NAMES)).to_have_text(["ana", "bo", "cy", "dee"])
    await expect(page.locator(SCORES)).to_have_text(["50", "40", "30", "20"])
    await expect(page.locator(STATUS)).to_have_attribute("data-state", "live")
    await expect(page.locator("#title")).to_have_text("global · top 4")
    highlighted = page.locator("#rows .is-highlighted")
    await expect(highlighted).to_have_count(1)
    await expect(highlighted).to_have_attribute("data-username", "dee")
    await page.screenshot(path=screenshot_path("before"))

    # dee passes bo and cy: the rows reorder, dee's row slides up and is marked as moved up.
    await page.evaluate(RECORD_SLIDES)
    await add_scores(gql, {"dee": 25})
    await expect(page.locator(NAMES)).to_have_text(["ana", "dee", "bo", "cy"])
    await expect(page.locator(SCORES)).to_have_text(["50", "45", "40", "30"])
    dee = page.locator('#rows [data-username="dee"]')
    await expect(dee).to_have_attribute("data-movement", "up")
    await expect(dee.locator(".overlay-rank")).to_have_text("2")
    await page.wait_for_function("() => window.slid.includes('dee') && window.slid.includes('bo')")

    # A newcomer enters the top 4 and cy drops out of it; the highlight stays on dee.
    await add_scores(gql, {"fay": 1000})
    await expect(page.locator(NAMES)).to_have_text(["fay", "ana", "dee", "bo"])
    await expect(page.locator(SCORES)).to_have_text(["1,000", "50", "45", "40"])
    await expect(highlighted).to_have_attribute("data-username", "dee")
    await animations_settled(page)
    await page.screenshot(path=screenshot_path("after"))


async def test_an_unknown_board_shows_the_service_error_as_plain_text(
    service: ServiceProcess, page: Page, screenshot_path: ScreenshotPath
) -> None:
    board = "<img src=x onerror=window.injected=1>"
    await page.goto(overlay_url(service.url, board))

    error = page.locator("#error")
    await expect(error).to_be_visible()
    await expect(error).to_contain_text("NOT_FOUND")
    await expect(page.locator(STATUS)).to_have_attribute("data-state", "error")
    # The board name came from the URL: shown as text, never parsed as markup.
    await expect(page.locator("#title")).to_have_text(f"{board} · top 10")
    await expect(page.locator("img")).to_have_count(0)
    assert await page.evaluate("() => window.injected") is None
    await page.screenshot(path=screenshot_path("error"))


@pytest.mark.parametrize(
    ("theme", "background"),
    [
        ("dark", "rgb(24, 29, 39)"),
        ("light", "rgb(255, 255, 255)"),
        ("transparent", "rgba(0, 0, 0, 0)"),
    ],
)
async def test_themes_apply_and_need_no_introspection(
    services: Services, page: Page, screenshot_path: ScreenshotPath, theme: str, background: str
) -> None:
    service = await services.start(LEADERBOARD_INTROSPECTION="false")
    async with httpx.AsyncClient(base_url=service.url) as client:
        await add_scores(GraphQLHttp(client, token=TOKEN), {"ana": 3, "bo": 2})
    await page.goto(overlay_url(service.url, theme=theme, highlight="bo"))

    await expect(page.locator(NAMES)).to_have_text(["ana", "bo"])
    backgrounds = await page.evaluate(
        "[document.documentElement, document.body, document.querySelector('.overlay')]"
        ".map((element) => getComputedStyle(element).backgroundColor)"
    )
    assert backgrounds == [background, background, background]
    assert await page.evaluate(f"document.documentElement.classList.contains('theme-{theme}')")
    await animations_settled(page)
    # omit_background keeps the alpha channel: the transparent theme shows as see-through.
    await page.locator(".overlay").screenshot(
        path=screenshot_path(theme), omit_background=theme == "transparent"
    )


async def test_an_unknown_theme_falls_back_to_dark(service: ServiceProcess, page: Page) -> None:
    await page.goto(overlay_url(service.url, theme="<neon>"))
    await expect(page.locator("html")).to_have_class("theme-dark")
    await expect(page.locator(STATUS)).to_have_attribute("data-state", "live")


async def test_limit_is_bounded_and_a_period_can_be_pinned(
    service: ServiceProcess, gql: GraphQLHttp, page: Page
) -> None:
    period = await current_period(gql)
    await add_scores(gql, {"ana": 5})
    await page.goto(overlay_url(service.url, limit=500, period=period))

    # 500 is over the schema's bound: the page asks for the most it may (no error).
    await expect(page.locator("#title")).to_have_text(f"global · top 100 · {period}")
    await expect(page.locator(NAMES)).to_have_text(["ana"])
    # The pinned period is the live one: a change on the board shows.
    await add_scores(gql, {"bo": 9})
    await expect(page.locator(NAMES)).to_have_text(["bo", "ana"])
    await expect(page.locator("#error")).to_be_hidden()

    await page.goto(overlay_url(service.url, period="2001-01"))
    await expect(page.locator("#empty")).to_be_visible()
    await expect(page.locator(NAMES)).to_have_count(0)
    await expect(page.locator(STATUS)).to_have_attribute("data-state", "live")

    await page.goto(overlay_url(service.url, period="last-year"))
    await expect(page.locator("#error")).to_contain_text("BAD_USER_INPUT")


async def test_overlay_reconnects_when_the_service_restarts(
    services: Services, page: Page, screenshot_path: ScreenshotPath
) -> None:
    first = await services.start()
    async with httpx.AsyncClient(base_url=first.url) as client:
        await add_scores(GraphQLHttp(client, token=TOKEN), {"ana": 10})
    await page.goto(overlay_url(first.url, highlight="bo"))
    await expect(page.locator(NAMES)).to_have_text(["ana"])
    await expect(page.locator(STATUS)).to_have_attribute("data-state", "live")

    assert await first.terminate()
    await expect(page.locator(STATUS)).to_have_attribute("data-state", "reconnecting")
    await expect(page.locator(STATUS)).to_have_text("reconnecting")
    await page.screenshot(path=screenshot_path("reconnecting"))

    # The same address again, on the same data: the page resubscribes by itself.
    second = await services.start(port=first.port)
    async with httpx.AsyncClient(base_url=second.url) as client:
        await add_scores(GraphQLHttp(client, token=TOKEN), {"bo": 20})
    await expect(page.locator(NAMES)).to_have_text(["bo", "ana"])
    await expect(page.locator(STATUS)).to_have_attribute("data-state", "live")
    await expect(page.locator("#rows .is-highlighted")).to_have_attribute("data-username", "bo")


async def test_static_files_have_cache_headers(service: ServiceProcess) -> None:
    async with httpx.AsyncClient(base_url=service.url) as client:
        vendored = await client.get("/static/vendor/graphql-ws-5.16.0.min.js")
        own = await client.get("/static/overlay/overlay.js")
        page = await client.get("/overlay/global")
    assert vendored.status_code == 200
    assert vendored.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert vendored.headers["content-type"].startswith("text/javascript")
    assert own.status_code == 200
    assert own.headers["cache-control"] == "no-cache"
    assert "etag" in own.headers
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["content-security-policy"]


SET_PROFILE = """
mutation($username: String!, $displayName: String) {
  setPlayerProfile(username: $username, displayName: $displayName)
}"""
XSS = '<img src=x onerror="window.pwned=1"><script>pwned=2</script>'


async def test_display_names_show_as_text_never_as_html(
    service: ServiceProcess, gql: GraphQLHttp, page: Page
) -> None:
    await add_scores(gql, {"ana": 50, "bo": 40})
    await gql.data(SET_PROFILE, {"username": "bo", "displayName": XSS})
    await page.goto(overlay_url(service.url, limit=4))
    # bo's row shows the name as typed, ana's (no profile) the username.
    await expect(page.locator(NAMES)).to_have_text(["ana", XSS])
    assert await page.locator("#rows img, #rows script").count() == 0
    # A name set later shows with the next change.
    await gql.data(SET_PROFILE, {"username": "ana", "displayName": "Ana <b>the</b> Great"})
    await add_scores(gql, {"bo": 20})
    await expect(page.locator(NAMES)).to_have_text([XSS, "Ana <b>the</b> Great"])
    assert await page.evaluate("() => window.pwned === undefined")


CREATE_LAP_BOARD = """
mutation {
  createLeaderboard(input: {
    id: "laps", reset: WEEKLY, updateRule: BEST, sortOrder: ASC, tieBreak: EARLIEST
  }) { id }
}"""
SET_LAP = """
mutation($username: String!, $score: Long!) {
  setScore(username: $username, score: $score, board: "laps") { score rank }
}"""


async def test_a_board_created_at_run_time_has_its_overlay_with_times_as_submitted(
    services: Services, page: Page, screenshot_path: ScreenshotPath
) -> None:
    admin = "browser-admin-token"
    service = await services.start(LEADERBOARD_ADMIN_TOKEN=admin)
    async with httpx.AsyncClient(base_url=service.url) as client:
        gql = GraphQLHttp(client, token=TOKEN)
        # Not a board yet: 404, as any unknown board.
        assert (await client.get("/overlay/laps")).status_code == 404
        await gql.data(CREATE_LAP_BOARD, token=admin)
        page_response = await client.get("/overlay/laps")
        assert page_response.status_code == 200
        assert 'data-sort-order="asc"' in page_response.text
        for username, lap in (("ana", 61250), ("bo", 59875), ("cy", 61250), ("dee", 1234567)):
            await gql.data(SET_LAP, {"username": username, "score": lap})
        assert (await client.get("/overlay/nope")).status_code == 404

        await page.goto(overlay_url(service.url, "laps"))
        # Fastest first; equal laps by who set them first; no digit grouping on times.
        await expect(page.locator(NAMES)).to_have_text(["bo", "ana", "cy", "dee"])
        await expect(page.locator(SCORES)).to_have_text(["59875", "61250", "61250", "1234567"])
        await expect(page.locator("#rows .overlay-rank")).to_have_text(["1", "2", "3", "4"])
        await expect(page.locator(STATUS)).to_have_attribute("data-state", "live")
        # A better lap moves cy up live; a worse one changes nothing.
        await gql.data(SET_LAP, {"username": "cy", "score": 58000})
        await gql.data(SET_LAP, {"username": "bo", "score": 70000})
        await expect(page.locator(NAMES)).to_have_text(["cy", "bo", "ana", "dee"])
        await expect(page.locator(SCORES)).to_have_text(["58000", "59875", "61250", "1234567"])
        await animations_settled(page)
        await page.screenshot(path=screenshot_path("laps"))
        # A DESC board keeps the reader's digit grouping (the page of `global`).
        global_page = await client.get("/overlay/global")
        assert 'data-sort-order="desc"' in global_page.text
