"""The live rankings on Redis (a single node or a Redis Cluster): `RedisRankingStore`.

Owns every Redis key, Lua script and pub/sub message of the service. One file per
concern:

- store.py       `RedisRankingStore`: routes each call to the parts below
- connection.py  the client: single node vs cluster, calls, pipelines, fan-out,
                 pub/sub, errors mapped to `StoreUnavailable`, timing for the observer
- keys.py        the key layout (documented there) and key expiry
- scripts.py     the Lua scripts (lua/*.lua): registered, called, read replies decoded
- write_batches.py  a batch's KEYS/ARGV for lua/increment.lua, or lua/write.lua when it
                 touches a board that is not `Board.plain`; their outcomes decoded (pure)
- single.py      unsharded boards: one script call each, concurrent increments merged
- coalescing.py  `CoalescedCalls`, the merging of concurrent all-or-nothing calls
- sharded.py     sharded boards: reads merged over the shards, board-wide ranks
- ranks.py       the rank arithmetic of sharded boards and merged pages (pure)
- cluster.py     a batch on a Redis Cluster: per-slot dry run, then apply
- spread.py      the write path of sharded boards and the Cluster: apply, then the
                 watcher markers read, ranks and publish only where asked or watched
- rebuild.py     rebuild claims, loading a period, reading totals, loaded markers
- instances.py   `RedisInstances`: the instance registry (heartbeats, fences, dead
                 instances' dirty periods; heartbeat, fence, leave, reap, dirty .lua)
- changes.py     the change-message codec, publishing, the subscription loop
- watchers.py    watcher markers: the boards some instance follows (writes publish only those)
- profiles.py    `RedisProfileCache`: player profiles cached in bucket hashes (profile_put.lua)
- rate_limits.py `RedisRateLimiter`: the per-client GCRA check (lua/rate_limit.lua), its
                 own small pool so a slow limiter never queues behind the rankings

May import the standard library, redis-py, orjson, sortedcontainers and `store.boards`,
`store.board_kinds`, `store.tiebreak` (the EARLIEST member encoding), `store.errors`,
`store.models`, `store.observer`, `store.rate_limits`, `store.instances`; nothing else of
the project.
"""

from store.redis.store import RedisRankingStore

__all__ = ["RedisRankingStore"]
