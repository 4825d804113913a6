"""The process: settings, the Starlette ASGI app, its lifespan (open and close every resource),
metrics, and the `leaderboard` command line.

The top layer: may import `schema`, `resolvers`, `store` and `batcher`; nothing imports it.
"""
