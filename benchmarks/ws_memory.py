"""Service memory per idle WebSocket subscriber, with and without compression offered.

Each subscriber is one real WebSocket (the `websockets` client, as a browser would connect:
`permessage-deflate` offered, or nothing offered) speaking graphql-transport-ws with one
`rankChanged` subscription, which then idles. The figure is the growth of the service's
resident memory from before the connections opened to after all of them received their first
payload, divided by their number. Each mode gets a fresh `leaderboard serve`, since memory a
process freed is not always given back to the system and would hide the second mode's cost.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
from collections.abc import Callable
from dataclasses import dataclass

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from benchmarks.bench import Bench, Row
from benchmarks.processes import LeaderboardService

PROTOCOL = Subprotocol("graphql-transport-ws")
RANK_CHANGED = (
    "subscription R($u: String!, $b: ID!) { rankChanged(username: $u, board: $b) { score rank } }"
)
KIB = 1024
BOARD = "subscribers"
TARGET_KIB = 20.0
"""Issue 15's target for an idle subscriber, compression offered or not."""
WARMUP = 50


async def subscribe_idle(
    url: str, board: str, username: str, compression: bool
) -> ClientConnection:
    """One WebSocket with one `rankChanged` subscription, once its first payload arrived."""
    socket = await connect(
        url,
        subprotocols=[PROTOCOL],
        # What a browser and the `websockets` client offer by default, or no extension at all.
        compression="deflate" if compression else None,
        ping_interval=None,
        open_timeout=60,
        max_queue=4,
    )
    try:
        await socket.send(orjson.dumps({"type": "connection_init", "payload": {}}).decode())
        async with asyncio.timeout(60):
            acknowledged = orjson.loads(await socket.recv())
            if acknowledged.get("type") != "connection_ack":
                raise RuntimeError(f"no connection_ack: {acknowledged}")
            subscribe = {
                "id": "1",
                "type": "subscribe",
                "payload": {"query": RANK_CHANGED, "variables": {"u": username, "b": board}},
            }
            await socket.send(orjson.dumps(subscribe).decode())
            first = orjson.loads(await socket.recv())
        if first.get("type") != "next" or first.get("payload", {}).get("errors"):
            raise RuntimeError(f"no first payload: {first}")
    except BaseException:
        await socket.close()
        raise
    return socket


async def open_idle(
    url: str, board: str, count: int, compression: bool, concurrency: int = 32
) -> list[ClientConnection]:
    """`count` idle subscribers (players p0, p1...), at most `concurrency` opening at a time."""
    gate = asyncio.Semaphore(concurrency)

    async def one(index: int) -> ClientConnection:
        async with gate:
            return await subscribe_idle(url, board, f"p{index}", compression)

    results = await asyncio.gather(*(one(index) for index in range(count)), return_exceptions=True)
    sockets = [result for result in results if isinstance(result, ClientConnection)]
    failures = [result for result in results if isinstance(result, BaseException)]
    if failures:
        await close_all(sockets)
        raise RuntimeError(f"{len(failures)} of {count} subscribers failed: {failures[0]!r}")
    return sockets


async def close_all(sockets: list[ClientConnection]) -> None:
    """Close every socket (without waiting long for the service's answer)."""

    async def one(socket: ClientConnection) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(socket.close(), 5)

    await asyncio.gather(*(one(socket) for socket in sockets))


@dataclass(frozen=True)
class Measurement:
    """RSS growth of the service for `connections` idle subscribers."""

    connections: int
    compression: bool
    negotiated: bool
    rss_before: int
    rss_after: int

    @property
    def per_connection_kib(self) -> float:
        """Service RSS per idle subscriber, KiB."""
        return (self.rss_after - self.rss_before) / self.connections / KIB


async def measure(
    url: str, board: str, count: int, compression: bool, rss: Callable[[], int]
) -> Measurement:
    """Open `count` idle subscribers against the service at `url` whose RSS `rss()` reads.

    A few connections open and close first, so the service's one-off costs (imports on first
    use, plan caches) are paid before the `before` reading.
    """
    warm = await open_idle(url, board, WARMUP, compression)
    await close_all(warm)
    await asyncio.sleep(1.0)
    before = rss()
    sockets = await open_idle(url, board, count, compression)
    try:
        await asyncio.sleep(1.0)
        after = rss()
        negotiated = bool(sockets[0].protocol.extensions)
    finally:
        await close_all(sockets)
    return Measurement(count, compression, negotiated, before, after)


def _enough_descriptors(count: int) -> None:
    """Raise this process's open-file limit (the services inherit it) for `count` sockets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = count + 1024
    if soft != resource.RLIM_INFINITY and soft < wanted:
        if hard != resource.RLIM_INFINITY and hard < wanted:
            raise RuntimeError(f"{count:,} connections need `ulimit -n` {wanted:,} (hard {hard:,})")
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


async def ws_memory(bench: Bench, context: object) -> list[Row]:
    """Service RSS per idle `rankChanged` subscriber at 5,000 connections (1,000 in --quick),
    the client offering permessage-deflate and offering nothing; and what accepting it
    (LEADERBOARD_WEBSOCKET_COMPRESSION=true) costs. A fresh single-worker service each."""
    from benchmarks.scenarios import say  # here: scenarios.py registers this scenario

    count = bench.options.size(1_000, 5_000)
    _enough_descriptors(count)
    await bench.seed_through_service(
        BOARD, [(f"p{number}", number + 1) for number in range(count + WARMUP)]
    )
    cases: tuple[tuple[str, bool, dict[str, str]], ...] = (
        ("permessage-deflate offered", True, {}),
        ("no compression offered", False, {}),
        (
            "permessage-deflate offered, LEADERBOARD_WEBSOCKET_COMPRESSION=true",
            True,
            {"LEADERBOARD_WEBSOCKET_COMPRESSION": "true"},
        ),
    )
    rows: list[Row] = []
    for label, compression, settings in cases:
        environment = bench.service_environment() | settings
        # The default cap is 5,000: room for the warm-up connections still closing.
        environment["LEADERBOARD_MAX_WEBSOCKET_CONNECTIONS"] = str(count + 10 * WARMUP)
        name = "service-ws-" + ("deflate" if compression else "plain") + str(len(rows))
        service = LeaderboardService(bench.scratch / name, environment, 1)
        await service.start()
        try:
            url = f"ws://127.0.0.1:{service.port}/graphql"
            measured = await measure(url, BOARD, count, compression, service.rss)
        finally:
            await service.stop()
        per = measured.per_connection_kib
        opted_in = bool(settings)
        say(f"  {label}: {per:.1f} KiB per connection (negotiated: {measured.negotiated})")
        rows.append(
            Row(
                scenario="ws memory",
                measured=f"service RSS per idle rankChanged subscriber, {count:,} conns, {label}",
                value=f"{per:.1f} KiB",
                unit="",
                target="" if opted_in else f"≤ {TARGET_KIB:.0f} KiB",
                passed=None if opted_in else per <= TARGET_KIB,
                details={
                    "connections": count,
                    "compression_offered": compression,
                    "compression_negotiated": measured.negotiated,
                    "rss_before_bytes": measured.rss_before,
                    "rss_after_bytes": measured.rss_after,
                    "kib_per_connection": per,
                },
            )
        )
    return rows
