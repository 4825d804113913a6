"""The process: settings (settings.py), the Starlette ASGI app (app.py), its lifespan
(resources.py: open and close every resource), the WebSocket protocols on Strawberry's
handlers (websocket.py), the per-transport operation rules (operation_rules.py), limits at
the door (http_guard.py, http_timeouts.py, rate_limit.py), a POST body read and decoded
once (post_body.py), request ids and logs (request_id.py, logs.py), the WebSocket
connection under the handlers (websocket_protocol.py), metrics (metrics.py), the seasons'
webhook (webhook.py), the browser pages (graphiql.py, overlay.py, static/), and the
`leaderboard` command line (cli.py; its `archive` command in archive_command.py).

The top layer: may import `schema`, `resolvers`, `store` and `batcher`; nothing imports it.
"""
