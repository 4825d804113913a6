"""A monotonic clock that tests move by hand, so nothing expires unless a test says so."""

from __future__ import annotations


class ManualClock:
    """A monotonic clock that moves only when the test says so: nothing expires by itself."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += seconds
