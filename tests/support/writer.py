"""Steady write load for fault tests: what was acknowledged, what was refused."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter

import httpx

from tests.support.graphql_client import GraphQLHttp

INCREMENT = """
mutation($username: String!, $delta: Int!, $eventId: String) {
  incrementScore(username: $username, delta: $delta, eventId: $eventId) { applied }
}"""

PLAYERS = tuple(f"p{index}" for index in range(5))


class Writer:
    """Sends increments from `concurrency` loops, each with a unique event id."""

    def __init__(
        self, gql: GraphQLHttp, *, concurrency: int = 1, pause: float = 0.005, id_prefix: str = "w"
    ) -> None:
        self.gql = gql
        self.id_prefix = id_prefix
        """Event ids are this and a number: writers on one board need different ones."""
        self.concurrency = concurrency
        self.pause = pause
        self.acknowledged: Counter[str] = Counter()
        self.acknowledged_ids: set[str] = set()
        self.refused = 0
        self.throttled = 0
        self.unanswered = 0
        self.other_errors: list[object] = []
        self._sequence = itertools.count()
        self._stopped = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """Start the write loops."""
        self._tasks = [asyncio.create_task(self._loop()) for _ in range(self.concurrency)]

    async def stop(self) -> None:
        """Stop the write loops and wait for them."""
        self._stopped.set()
        await asyncio.gather(*self._tasks)

    async def _loop(self) -> None:
        while not self._stopped.is_set():
            number = next(self._sequence)
            username = PLAYERS[number % len(PLAYERS)]
            delta = number % 3 + 1
            event_id = f"{self.id_prefix}{number}"
            try:
                body = await self.gql.execute(
                    INCREMENT, {"username": username, "delta": delta, "eventId": event_id}
                )
            except httpx.TransportError:
                # The server died or stopped listening: this one is not acknowledged.
                self.unanswered += 1
                await asyncio.sleep(0.05)
                continue
            if "errors" in body:
                codes = [error["extensions"]["code"] for error in body["errors"]]
                if codes == ["UNAVAILABLE"]:
                    self.refused += 1
                elif codes == ["RATE_LIMITED"]:
                    # The shipped nginx limits one client's rate; refused writes come back
                    # fast and the loops outrun it. A client waits as told, then goes on.
                    self.throttled += 1
                    await asyncio.sleep(float(body["errors"][0]["extensions"]["retryAfter"]))
                    continue
                else:
                    self.other_errors.append(body)
            else:
                assert body["data"]["incrementScore"]["applied"] is True
                self.acknowledged[username] += delta
                self.acknowledged_ids.add(event_id)
            await asyncio.sleep(self.pause)

    @property
    def total(self) -> int:
        """Sum of acknowledged deltas."""
        return sum(self.acknowledged.values())

    async def wait_for(self, condition: str, timeout: float = 30.0) -> None:
        """Wait until writes are refused ('refused') or accepted ('accepted') again."""
        deadline = time.monotonic() + timeout
        start_refused = self.refused
        start_total = self.total
        while time.monotonic() < deadline:
            if condition == "refused" and self.refused > start_refused:
                return
            if condition == "accepted" and self.total > start_total:
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"writes were not {condition} within {timeout} s")
