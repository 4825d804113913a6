"""Application logic between the GraphQL schema and the stores: validation, writes, reads,
recovery on demand, live updates.

May import `store` and `batcher`, never `schema` or `server`. Holds no Redis command
or SQL statement: those live in `store`.
"""
