"""`RedisProfileCache`: the profile cache on Redis, shared by every instance (key layout in
keys.py). Reads are one HMGET per bucket touched, pipelined; writes go through
profile_put.lua, which keeps the newest version of each entry. Each bucket's field ""
is its generation: an erasure moves it on, and a refill stamped with an older one writes
nothing (the race of a read that found a row just before the erasure deleted it)."""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from store.models import PlayerProfile, StoredProfile
from store.redis.connection import AnyPipeline, Connection
from store.redis.keys import KeyLayout
from store.redis.scripts import source_plain

_GENERATION = ""
"""The bucket field holding its generation (usernames are never empty)."""


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

    async def read(
        self, usernames: Sequence[str]
    ) -> tuple[dict[str, StoredProfile], dict[str, int]]:
        """The cached entries and each bucket's generation: one pipelined round."""
        buckets = self._buckets(usernames)

        def commands(pipe: AnyPipeline) -> None:
            for key, names in buckets.items():
                pipe.hmget(key, [*names, _GENERATION])

        replies = await self._connection.pipelined(commands)
        found: dict[str, StoredProfile] = {}
        stamp: dict[str, int] = {}
        for (key, names), entries in zip(buckets.items(), replies, strict=True):
            *values, generation = entries
            stamp[key] = int(generation or 0)
            for username, entry in zip(names, values, strict=True):
                if entry is not None and (stored := decode(entry)) is not None:
                    found[username] = stored
        return found, stamp

    async def put(self, entries: dict[str, StoredProfile]) -> None:
        """Cache entries over older versions: one script call per bucket, in parallel."""
        await self._write(entries, None)

    async def fill(self, entries: dict[str, StoredProfile], stamp: dict[str, int]) -> None:
        """`put` into each bucket whose generation is still the one in `stamp`."""
        await self._write(entries, stamp)

    async def _write(self, entries: dict[str, StoredProfile], stamp: dict[str, int] | None) -> None:
        if not entries:
            return
        buckets = self._buckets(list(entries))
        await self._connection.fan_out(
            self._put,
            [
                (
                    [key],
                    [
                        "" if stamp is None else stamp.get(key, 0),
                        *(
                            value
                            for username in names
                            for value in (
                                username,
                                entries[username].version,
                                encode(entries[username]),
                            )
                        ),
                    ],
                )
                for key, names in buckets.items()
            ],
        )

    async def forget(self, usernames: Sequence[str]) -> None:
        """Move each bucket's generation on, then HDEL the players' entries: one pipelined
        round. A refill stamped before the HINCRBY writes nothing after it; one stamped
        after it read the table after the erasure deleted the row."""
        buckets = self._buckets(usernames)

        def commands(pipe: AnyPipeline) -> None:
            for key, names in buckets.items():
                pipe.hincrby(key, _GENERATION, 1)
                pipe.hdel(key, *names)

        if buckets:
            await self._connection.pipelined(commands)

    def _buckets(self, usernames: Sequence[str]) -> dict[str, list[str]]:
        buckets: dict[str, list[str]] = {}
        for username in usernames:
            buckets.setdefault(self._layout.profile_bucket(username), []).append(username)
        return buckets
