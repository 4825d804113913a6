"""What the browser tests and the docs screenshot put on a board, and where they look."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote, urlencode

from playwright.async_api import Page

from tests.support.graphql_client import GraphQLHttp

TOKEN = "browser-test-token"
BOARDS = "global:monthly,arena:never"

INCREMENTS = """
mutation($increments: [ScoreIncrement!]!) {
  incrementScores(increments: $increments) { username score rank }
}"""

CURRENT_PERIOD = "query { leaderboards { id currentPeriod } }"

DEMO_SCORES = {
    "NovaStrike": 9840,
    "kestrel": 9315,
    "PixelMonk": 8760,
    "ember_fox": 8120,
    "Quasar.9": 7705,
    "lune": 7240,
    "ironclad": 6980,
    "Mirai-chan": 6415,
    "TurboTaco": 5990,
    "glitchwave": 5530,
}
"""Ten players for a full-looking overlay (the docs screenshot)."""

DEMO_HIGHLIGHT = "ember_fox"


def overlay_url(base_url: str, board: str = "global", **options: str | int) -> str:
    """The overlay page of `board` with query parameters (limit, theme, highlight, period)."""
    query = f"?{urlencode(options)}" if options else ""
    return f"{base_url}/overlay/{quote(board, safe='')}{query}"


async def add_scores(gql: GraphQLHttp, scores: Mapping[str, int], board: str = "global") -> None:
    """Add each delta to its player's score on `board`, in one mutation."""
    increments = [
        {"username": username, "delta": delta, "board": board} for username, delta in scores.items()
    ]
    await gql.data(INCREMENTS, {"increments": increments})


async def current_period(gql: GraphQLHttp, board: str = "global") -> str:
    """The id of the board's live period."""
    data = await gql.data(CURRENT_PERIOD)
    periods = {entry["id"]: entry["currentPeriod"] for entry in data["leaderboards"]}
    period: str = periods[board]
    return period


async def animations_settled(page: Page) -> None:
    """Wait until no CSS transition or animation runs (rows slid into place)."""
    # A function, not an expression: the overlay's CSP forbids eval, which expressions need.
    await page.wait_for_function(
        "() => document.getAnimations()"
        ".filter((animation) => animation.playState === 'running')"
        ".every((animation) => animation.effect.getTiming().iterations === Infinity)"
    )
