"""The process: settings, the Starlette ASGI app (app.py), its lifespan (resources.py: open
and close every resource), the WebSocket protocols on Strawberry's handlers (websocket.py),
the per-transport operation rules (operation_rules.py), slow-client timeouts
(http_timeouts.py), metrics, and the `leaderboard` command line.

The top layer: may import `schema`, `resolvers`, `store` and `batcher`; nothing imports it.
"""
