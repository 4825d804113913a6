"""`RedisProfileCache`: the profile cache on Redis, shared by every instance (key layout in
keys.py). Reads are one HMGET per bucket touched, pipelined; writes go through
profile_put.lua, which keeps the newest version of each entry."""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from store.models import PlayerProfile, StoredProfile
from store.redis.connection import AnyPipeline, Connection
from store.redis.keys import KeyLayout
from store.redis.scripts import source_plain


def encode(stored: StoredProfile) -> bytes:
    """A cache entry: the version, then the JSON [display name, metadata text]."""
    payload = orjson.dumps([stored.profile.display_name, stored.profile.metadata])
    return f"{stored.version}:".encode() + payload


def decode(entry: bytes | str) -> StoredProfile | None:
    """The stored profile of a cache entry; None for one that does not decode (a miss)."""
    raw = entry.encode() if isinstance(entry, str) else entry
    version, _, payload = raw.partition(b":")
    try:
        display_name, metadata = orjson.loads(payload)
        return StoredProfile(
            version=int(version),
            profile=PlayerProfile(display_name=display_name, metadata=metadata),
        )
    except (ValueError, TypeError):
        return None


class RedisProfileCache:
    """`ProfileCache` on Redis: a hash per bucket of players."""

    def __init__(self, connection: Connection, layout: KeyLayout) -> None:
        self._connection = connection
        self._layout = layout
        self._put = connection.register("profile_put", source_plain("profile_put"))

    async def get(self, usernames: Sequence[str]) -> dict[str, StoredProfile]:
        """The cached entries of the named players: one pipelined round."""
        buckets = self._buckets(usernames)

        def commands(pipe: AnyPipeline) -> None:
            for key, names in buckets.items():
                pipe.hmget(key, names)

        replies = await self._connection.pipelined(commands)
        found: dict[str, StoredProfile] = {}
        for names, entries in zip(buckets.values(), replies, strict=True):
            for username, entry in zip(names, entries, strict=True):
                if entry is not None and (stored := decode(entry)) is not None:
                    found[username] = stored
        return found

    async def put(self, entries: dict[str, StoredProfile]) -> None:
        """Cache entries over older versions: one script call per bucket, in parallel."""
        if not entries:
            return
        buckets = self._buckets(list(entries))
        await self._connection.fan_out(
            self._put,
            [
                (
                    [key],
                    [
                        value
                        for username in names
                        for value in (
                            username,
                            entries[username].version,
                            encode(entries[username]),
                        )
                    ],
                )
                for key, names in buckets.items()
            ],
        )

    async def forget(self, usernames: Sequence[str]) -> None:
        """HDEL the players' entries: one pipelined round."""
        buckets = self._buckets(usernames)

        def commands(pipe: AnyPipeline) -> None:
            for key, names in buckets.items():
                pipe.hdel(key, *names)

        if buckets:
            await self._connection.pipelined(commands)

    def _buckets(self, usernames: Sequence[str]) -> dict[str, list[str]]:
        buckets: dict[str, list[str]] = {}
        for username in usernames:
            buckets.setdefault(self._layout.profile_bucket(username), []).append(username)
        return buckets
