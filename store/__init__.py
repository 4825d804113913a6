"""Storage: live rankings (Redis or embedded) and the durable score history (MySQL or SQLite).

Owns every Redis key, Lua script, pub/sub message and SQL statement of the service; nothing
outside this package knows how data is laid out. One package per backend: `store/redis/`
(the live rankings on Redis) and `store/sql/` (the history), each with its own map; next to
them `ports.py` (the protocols the rest of the service depends on), the values and errors
that cross the boundary (`models.py`, `errors.py`, `observer.py`), boards and periods, the
embedded store, the top cache, recovery, which history rows may be archived or deleted
(`event_archive.py`), the instance registry's protocol (`instances.py`)
and rate-limit decisions, player profiles read through a cache (`profiles.py`,
`embedded_profiles.py`) (docs/architecture.md).

May import only the standard library and third-party drivers, never `batcher`,
`resolvers`, `schema` or `server`.
"""
