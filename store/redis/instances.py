"""`RedisInstances`: the instance registry in Redis (store/instances.py), one script per
step (lua/heartbeat.lua, fence.lua, leave.lua, reap.lua, dirty.lua), each atomic on the
registry's one hash tag (keys.py) and on the Redis server's clock, so instances' clocks
never meet."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from store.instances import FenceState, Heartbeat
from store.redis.connection import Connection, text
from store.redis.keys import KeyLayout
from store.redis.scripts import source_plain


def _texts(items: Sequence[Any]) -> tuple[str, ...]:
    return tuple(text(item) for item in items)


class RedisInstances:
    """The registry's scripts on the ranking store's connection."""

    def __init__(self, connection: Connection, layout: KeyLayout) -> None:
        self._connection = connection
        self._keys = layout.instances()
        self._heartbeat = connection.register("heartbeat", source_plain("heartbeat"))
        self._fence = connection.register("fence", source_plain("fence"))
        self._leave = connection.register("leave", source_plain("leave"))
        self._reap = connection.register("reap", source_plain("reap"))
        self._dirty = connection.register("dirty", source_plain("dirty"))

    async def heartbeat(self, instance: str, ttl_seconds: float, passed: int) -> Heartbeat:
        """heartbeat.lua: register or refresh `instance`, record the fence it passed."""
        keys = self._keys
        reply = await self._connection.call(
            self._heartbeat,
            [keys.members, keys.fenced, keys.fence, keys.since],
            [instance, max(1, round(ttl_seconds * 1000)), passed],
        )
        names = _texts(reply[3:])
        split = names.index("")
        return Heartbeat(
            fence=int(reply[0]),
            known=bool(reply[1]),
            age_ms=int(reply[2]),
            live=names[:split],
            dead=names[split + 1 :],
        )

    async def fence(self, fence: int = 0) -> FenceState:
        """fence.lua: ask for a new fence (0) or check on one."""
        keys = self._keys
        reply = await self._connection.call(
            self._fence, [keys.members, keys.fenced, keys.fence, keys.since], [fence]
        )
        names = _texts(reply[2:])
        split = names.index("")
        return FenceState(
            fence=int(reply[0]),
            age_ms=int(reply[1]),
            waiting=names[:split],
            live=names[split + 1 :],
        )

    async def leave(self, instance: str) -> None:
        """leave.lua: take `instance` out of the registry."""
        keys = self._keys
        await self._connection.call(
            self._leave, [keys.members, keys.fenced, keys.dirty(instance)], [instance]
        )

    async def reap(self, instance: str) -> list[tuple[str, str]] | None:
        """reap.lua: claim a dead instance and its dirty board periods."""
        keys = self._keys
        reply = await self._connection.call(
            self._reap, [keys.members, keys.fenced, keys.dirty(instance)], [instance]
        )
        if not reply:
            return None
        periods: list[tuple[str, str]] = []
        for entry in _texts(reply[1:]):
            board, _, period = entry.rpartition("|")
            periods.append((board, period))
        return periods

    async def dirty(
        self, instance: str, periods: Sequence[tuple[str, str]], generation: int, *, declare: bool
    ) -> None:
        """dirty.lua: declare or retire board periods of `instance` at `generation`."""
        args: list[str | int] = [1 if declare else 0]
        for board, period in periods:
            args += (f"{board}|{period}", generation)
        await self._connection.call(self._dirty, [self._keys.dirty(instance)], args)
