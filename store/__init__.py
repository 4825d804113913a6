"""Storage: live rankings (Redis or embedded) and the durable score history (MySQL or SQLite).

Owns every Redis key, Lua script and SQL statement of the service; nothing outside
this package knows how data is laid out. May import only the standard library and
third-party drivers, never `batcher`, `resolvers`, `schema` or `server`.
"""
