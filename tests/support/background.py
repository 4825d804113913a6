"""What a running app sends to Redis on its own clock, not for a request: the commands of its
background loops, which a MONITOR watcher of "what did this request cost" leaves out."""

from __future__ import annotations

from datetime import timedelta

from store.redis.keys import KeyLayout

SUBSCRIPTIONS = ("SUBSCRIBE", "UNSUBSCRIBE", "PSUBSCRIBE", "PUNSUBSCRIBE")
"""Every pub/sub follower (re)subscribes on its own: the live feed, the top cache's feeds,
the board, ban and period notices."""


def background_families(prefix: str) -> tuple[str, ...]:
    """The key and channel names under `prefix` that only background loops use."""
    registry = KeyLayout(prefix, (), timedelta(0)).instances()
    return (
        # The instance registry: heartbeats, fence merges, reaping dead instances.
        # Its keys share one hash tag: `{prefix}:{instances}:`.
        registry.members.removesuffix("members"),
        # Period results the seasons tick publishes (server/resources.py `period_notices`).
        f"{prefix}:period-ended",
    )


def is_background(command: str, prefix: str) -> bool:
    """Whether a MONITOR line of an app under `prefix` is one of its background loops' work."""
    return command.upper().startswith(SUBSCRIPTIONS) or any(
        family in command for family in background_families(prefix)
    )
