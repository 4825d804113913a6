"""Client event ids remembered for an idempotency window, not for a whole period.

The embedded store's twin of the Redis buckets (store/redis/keys.py, "idempotency
window"): with window W, bucket b = floor(now / W) holds the ids first seen in
[bW, (b+1)W); a check looks in buckets b and b-1, and older buckets are dropped. So an id
is remembered at least W and at most 2W after it was first applied, whatever the
period's length, and memory is the ids of the last one or two windows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import timedelta

DEFAULT_EVENT_ID_WINDOW = timedelta(days=1)
"""How long a client event id is remembered at least (`LEADERBOARD_EVENT_ID_WINDOW_SECONDS`)."""

Binding = tuple[str, int]
"""What an event id is bound to: the increment's (username, delta)."""


class EventIdWindow:
    """The client event ids of one board period still inside the window."""

    __slots__ = ("_bucket", "_clock", "_current", "_previous", "_window_ms")

    def __init__(
        self,
        window_seconds: float,
        clock: Callable[[], float],
        bindings: Iterable[tuple[str, Binding]] = (),
    ) -> None:
        self._window_ms = max(1, int(window_seconds * 1000))
        self._clock = clock
        self._bucket = self._bucket_now()
        # Restored ids (a load) start in the current bucket: remembered at least W more.
        self._current: dict[str, Binding] = dict(bindings)
        self._previous: dict[str, Binding] = {}

    def _bucket_now(self) -> int:
        return int(self._clock() * 1000) // self._window_ms

    def _roll(self) -> None:
        bucket = self._bucket_now()
        if bucket <= self._bucket:  # the same bucket, or a clock stepping back
            return
        self._previous = self._current if bucket == self._bucket + 1 else {}
        self._current = {}
        self._bucket = bucket

    @property
    def bucket(self) -> int:
        """The current bucket: the `id_life` of an id remembered now."""
        self._roll()
        return self._bucket

    def get(self, event_id: str) -> Binding | None:
        """The increment `event_id` is bound to, while it is remembered."""
        self._roll()
        return self._current.get(event_id) or self._previous.get(event_id)

    def remember(self, event_id: str, binding: Binding) -> None:
        """Bind `event_id` (applied now) to its increment."""
        self._roll()
        self._current[event_id] = binding

    def forget(self, event_id: str, username: str) -> None:
        """Forget `event_id` where it is bound to `username` (an erasure)."""
        for bucket in (self._current, self._previous):
            bound = bucket.get(event_id)
            if bound is not None and bound[0] == username:
                del bucket[event_id]

    def __len__(self) -> int:
        self._roll()
        return len(self._current) + len(self._previous)
