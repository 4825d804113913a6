"""GraphiQL at GET /graphql, from the vendored React and GraphiQL builds (no CDN), opening
on example tabs: a query, both subscriptions and a mutation."""

from __future__ import annotations

import functools

from starlette.responses import HTMLResponse

from server.overlay import OWN_FILE_CACHE, STATIC_DIRECTORY


@functools.cache
def graphiql_html() -> str:
    """The GraphiQL page; its scripts and styles come from /static."""
    return (STATIC_DIRECTORY / "graphiql" / "graphiql.html").read_text(encoding="utf-8")


def graphiql_response() -> HTMLResponse:
    """The GraphiQL page as a response."""
    return HTMLResponse(
        graphiql_html(),
        headers={"Cache-Control": OWN_FILE_CACHE, "X-Content-Type-Options": "nosniff"},
    )
