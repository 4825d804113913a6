"""Per-client rate limits: the rate syntax, the GCRA decision, and the in-process limiter.

GCRA (the generic cell rate algorithm) keeps one number per client, its theoretical
arrival time (TAT): when the client's next request would be due if it called at exactly
the allowed rate. A request is allowed while that time stays within `burst` intervals of
now. The decision is `gcra`, a pure function on integer microseconds; the in-process
limiter calls it, and store/redis/lua/rate_limit.lua does the same arithmetic inside Redis
(store/redis/rate_limits.py), so one instance or many decide alike.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

_MICROS = 1_000_000
_UNITS = {
    "s": 1,
    "sec": 1,
    "second": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "h": 3600,
    "hour": 3600,
}
_RATE = re.compile(
    r"^\s*(?P<count>[0-9]+)\s*/\s*(?P<unit>[a-z]+)(?:\s+burst\s+(?P<burst>[0-9]+))?\s*$",
    re.ASCII,
)
OFF = "off"
RATE_SYNTAX = (
    "'off', or '<count>/<s|m|h>' with an optional ' burst <count>', e.g. '100/s burst 200'"
)


@dataclass(frozen=True)
class Rate:
    """A limit: `count` requests per `period_seconds`, at most `burst` of them at once."""

    count: int
    period_seconds: int
    burst: int

    @property
    def interval_us(self) -> int:
        """Microseconds between two requests at exactly the allowed rate (at least 1)."""
        return max(1, self.period_seconds * _MICROS // self.count)

    def __str__(self) -> str:
        unit = {1: "s", 60: "m", 3600: "h"}[self.period_seconds]
        return f"{self.count}/{unit} burst {self.burst}"


def parse_rate(text: str) -> Rate | None:
    """A rate from its setting (`100/s`, `100/s burst 200`, `6000/m`); None for `off` or empty.

    Raises ValueError naming the syntax for anything else. The burst defaults to `count`:
    a client may spend one period's allowance at once.
    """
    normalized = text.strip().lower()
    if normalized in ("", OFF):
        return None
    match = _RATE.match(normalized)
    if match is None or match["unit"] not in _UNITS:
        raise ValueError(f"{text!r} is not a rate: expected {RATE_SYNTAX}")
    count = int(match["count"])
    burst = int(match["burst"]) if match["burst"] is not None else count
    if count < 1 or burst < 1:
        raise ValueError(f"{text!r}: the count and the burst must be at least 1")
    return Rate(count=count, period_seconds=_UNITS[match["unit"]], burst=burst)


@dataclass(frozen=True)
class Decision:
    """A check's outcome: allowed, or refused with how long until the next request fits."""

    allowed: bool
    retry_after_us: int = 0


ALLOWED = Decision(allowed=True)


def gcra(tat_us: int | None, now_us: int, interval_us: int, burst: int) -> tuple[Decision, int]:
    """One request at `now_us` against a stored TAT (None: none stored): the decision and
    the TAT to store (unchanged when refused). store/redis/lua/rate_limit.lua mirrors this."""
    tat = now_us if tat_us is None or tat_us < now_us else tat_us
    new_tat = tat + interval_us
    over = new_tat - now_us - interval_us * burst
    if over > 0:
        return Decision(allowed=False, retry_after_us=over), tat
    return ALLOWED, new_tat


class RateLimiter(Protocol):
    """Where the TATs live: this process, or Redis (shared by every instance)."""

    async def check(self, key: str, rate: Rate) -> Decision:
        """Count one request of `key` against `rate`; raises StoreUnavailable when it cannot
        decide."""
        ...

    async def close(self) -> None:
        """Release the connections, if any."""
        ...


class InProcessRateLimiter:
    """TATs in a dict: the embedded mode's limiter (one process is the whole service)."""

    # Entries whose TAT has passed are the same as no entry; they are swept out every so
    # many checks so that one-off clients (a scan of many addresses) cannot grow the dict.
    _SWEEP_EVERY = 10_000

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tats: dict[str, int] = {}
        self._checks = 0

    def __len__(self) -> int:
        return len(self._tats)

    async def check(self, key: str, rate: Rate) -> Decision:
        """Count one request of `key` against `rate`."""
        now = int(self._clock() * _MICROS)
        self._checks += 1
        if self._checks % self._SWEEP_EVERY == 0:
            self._tats = {k: tat for k, tat in self._tats.items() if tat > now}
        decision, tat = gcra(self._tats.get(key), now, rate.interval_us, rate.burst)
        if decision.allowed:
            self._tats[key] = tat
        return decision

    async def close(self) -> None:
        """Nothing to release."""
