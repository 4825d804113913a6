"""GraphiQL in a real browser: served from vendored files, example tabs, query and subscription."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, WebSocket, expect

from tests.support.browser import ScreenshotPath
from tests.support.graphql_client import GraphQLHttp
from tests.support.overlay_scene import add_scores
from tests.support.service_process import ServiceProcess

pytestmark = pytest.mark.browser

RESULT = ".result-window"
RUN = ".graphiql-execute-button"
ACTIVE_OPERATION = """(name) => {
  const state = JSON.parse(localStorage.getItem("graphiql:tabState") || "{}");
  return state.tabs && state.tabs[state.activeTabIndex].operationName === name;
}"""


async def test_graphiql_runs_the_example_query_and_a_live_subscription(
    service: ServiceProcess, gql: GraphQLHttp, page: Page, screenshot_path: ScreenshotPath
) -> None:
    await add_scores(gql, {"ana": 50, "bo": 30})
    requested: list[str] = []
    sockets: list[WebSocket] = []
    page.on("request", lambda request: requested.append(request.url))
    page.on("websocket", lambda socket: sockets.append(socket))
    await page.goto(f"{service.url}/graphql")

    tabs = page.locator(".graphiql-tab-button")
    await expect(tabs).to_have_text(["Standings", "TopPlayersLive", "RankLive", "AddScore"])
    await page.locator(RUN).click()
    result = page.locator(RESULT)
    await expect(result).to_contain_text('"currentPeriod"')
    await expect(result).to_contain_text('"username": "ana"')
    await expect(result).to_contain_text('"score": 50')
    await page.screenshot(path=screenshot_path("query"))

    # The subscription runs over WebSocket and its result follows the board.
    await tabs.filter(has_text="TopPlayersLive").click()
    # GraphiQL picks the tab's operation name 100 ms after the editor changes (debounced);
    # run only once it did, as a person would.
    await page.wait_for_function(ACTIVE_OPERATION, arg="TopPlayersLive")
    await page.locator(RUN).click()
    await expect(result).to_contain_text('"topPlayersChanged"')
    await expect(result).to_contain_text('"username": "bo"')
    await add_scores(gql, {"cy": 400})
    await expect(result).to_contain_text('"username": "cy"')
    await expect(result).to_contain_text('"score": 400')
    await page.screenshot(path=screenshot_path("subscription"))

    # Everything came from the service itself: no CDN.
    assert requested
    assert all(url.startswith((service.url, "data:")) for url in requested), requested
    assert [socket.url for socket in sockets] == [
        service.url.replace("http://", "ws://") + "/graphql"
    ]
