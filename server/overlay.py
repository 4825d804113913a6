"""The live overlay page (/overlay/{board}) and the static files browser pages load (/static).

The page itself is static: its script reads the board from the URL and its options from the
query string (limit, theme, highlight, period), and subscribes to `topPlayersChanged` over
WebSocket. No write token is involved, and no introspection. The page of a board is
served from the instance's live board index, so a board created at run time has its
overlay as soon as the instance serves it; the board's sort order is written into the
page (`data-sort-order`): scores of ASC boards (race times) print as submitted.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from resolvers.validation import TOP_LIMIT_MAX
from store.board_kinds import SortOrder
from store.boards import Board

STATIC_DIRECTORY = Path(__file__).with_name("static")
"""Pages, scripts, styles and vendored libraries, served under /static."""

VENDOR_DIRECTORY = (STATIC_DIRECTORY / "vendor").resolve()
"""Resolved, like the paths StaticFiles hands to file_response."""

# The page may talk only to its own service: scripts and styles from /static, the WebSocket
# back to /graphql. Nothing inline, so injected markup could not run even if some got in.
OVERLAY_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self' ws: wss:",
        "img-src 'self' data:",
        "base-uri 'none'",
        "form-action 'none'",
    ]
)

VENDOR_CACHE = "public, max-age=31536000, immutable"
"""Vendored files carry their version in their name: a new version is a new URL."""

OWN_FILE_CACHE = "no-cache"
"""The project's own scripts and styles change with the service: revalidate (ETag) each time."""


class StaticAssets(StaticFiles):
    """StaticFiles with cache headers by kind of file."""

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        is_vendored = Path(full_path).is_relative_to(VENDOR_DIRECTORY)
        response.headers["Cache-Control"] = VENDOR_CACHE if is_vendored else OWN_FILE_CACHE
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


@functools.cache
def overlay_html(sort_order: SortOrder = SortOrder.DESC) -> str:
    """The overlay page, told the largest `limit` the schema accepts and the board's order."""
    template = (STATIC_DIRECTORY / "overlay" / "overlay.html").read_text(encoding="utf-8")
    return template.replace("{{max_limit}}", str(TOP_LIMIT_MAX)).replace(
        "{{sort_order}}", sort_order.value
    )


def _overlay_page(boards: Mapping[str, Board]) -> Callable[[Request], Awaitable[Response]]:
    async def overlay_page(request: Request) -> Response:
        """The overlay for the board in the path. A board the service does not have answers
        404, with the same page: its script shows the service's NOT_FOUND error in place."""
        board = boards.get(request.path_params["board"])
        return HTMLResponse(
            overlay_html(SortOrder.DESC if board is None else board.sort_order),
            status_code=200 if board is not None else 404,
            headers={
                "Cache-Control": OWN_FILE_CACHE,
                "Content-Security-Policy": OVERLAY_SECURITY_POLICY,
                "Referrer-Policy": "no-referrer",
                "X-Content-Type-Options": "nosniff",
            },
        )

    return overlay_page


async def default_overlay(request: Request) -> Response:
    """/overlay without a board: the `global` board's overlay, with the same options."""
    return RedirectResponse(request.url.replace(path=request.url.path + "/global"))


def routes(boards: Mapping[str, Board]) -> list[BaseRoute]:
    """The overlay page of each of `boards` (by id; a live mapping: boards created at run
    time show through) and the static files, for the app's route list."""
    return [
        Route("/overlay", default_overlay, methods=["GET", "HEAD"]),
        Route("/overlay/{board}", _overlay_page(boards), methods=["GET", "HEAD"]),
        # GraphiQL's bundle is 3.5 MB of text: compressed it is a fifth of that.
        Mount(
            "/static",
            app=GZipMiddleware(StaticAssets(directory=STATIC_DIRECTORY), minimum_size=1024),
            name="static",
        ),
    ]
