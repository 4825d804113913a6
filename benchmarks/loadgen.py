"""A low-overhead asyncio HTTP/1.1 load generator: keep-alive connections, ready request bytes.

One `asyncio.Protocol` per connection parses just enough of each response (status line and
`content-length`) to hand the body back; requests are pre-encoded bytes. On uvloop one
process drives roughly 15,000-25,000 requests/s per core, far more than one service
worker answers, so the generator is not what is measured (the `loadgen ceiling` row of
the report measures it against uvicorn's cheapest route in the same run).

Two drivers:

- `closed_loop`: N connections, each sends its next request as soon as the previous one
  answered (throughput at a concurrency level).
- `open_loop`: requests at a fixed rate, spread over N connections; latency is measured from
  each request's *intended* send time, so a stalled server cannot hide its queueing delay
  (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import math
import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

Request = tuple[bytes, Any]
"""Ready request bytes and whatever the response check wants to know about the request."""
ResponseCheck = Callable[[Any, int, bytes], bool]
"""Called with (request meta, status, body) for every response; True = success."""


class ResponseError(Exception):
    """The connection broke or the response could not be parsed."""


def http_post(path: str, body: bytes, headers: dict[str, str] | None = None) -> bytes:
    """The bytes of one keep-alive HTTP/1.1 POST with a JSON body."""
    lines = [
        f"POST {path} HTTP/1.1",
        "Host: 127.0.0.1",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
    ]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def http_get(path: str) -> bytes:
    """The bytes of one keep-alive HTTP/1.1 GET."""
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()


class _Protocol(asyncio.Protocol):
    """Collects bytes until one full response (status + content-length body) is there."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.lost: Exception | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.waiter is not None:
            self._complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = exc or ResponseError("connection closed by the server")
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(ResponseError(str(self.lost)))

    def _complete(self) -> None:
        buffer = self.buffer
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(buffer[:end]).lower()
        at = head.find(b"\r\ncontent-length:")
        if at < 0:
            self._fail("response without content-length")
            return
        stop = head.find(b"\r\n", at + 2)
        length = int(head[at + 17 : stop if stop >= 0 else len(head)])
        total = end + 4 + length
        if len(buffer) < total:
            return
        try:
            status = int(head[9:12])
        except ValueError:
            self._fail(f"bad status line {head[:40]!r}")
            return
        body = bytes(buffer[end + 4 : total])
        del buffer[:total]
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result((status, body))

    def _fail(self, reason: str) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(ResponseError(reason))
        if self.transport is not None:
            self.transport.close()


class HttpConnection:
    """One keep-alive connection; one request at a time."""

    def __init__(self, protocol: _Protocol) -> None:
        self._protocol = protocol

    @classmethod
    async def open(cls, host: str, port: int) -> HttpConnection:
        """Connect (TCP_NODELAY is asyncio's default)."""
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(_Protocol, host, port)
        return cls(protocol)

    @property
    def broken(self) -> bool:
        """Whether the connection is unusable."""
        return self._protocol.lost is not None

    async def request(self, raw: bytes, timeout: float = 30.0) -> tuple[int, bytes]:
        """Send a request and wait for its response: (status, body)."""
        protocol = self._protocol
        if protocol.lost is not None or protocol.transport is None:
            raise ResponseError(f"connection is closed: {protocol.lost}")
        waiter: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()
        protocol.waiter = waiter
        protocol.transport.write(raw)
        if protocol.buffer:
            protocol._complete()
        try:
            async with asyncio.timeout(timeout):
                return await waiter
        except TimeoutError:
            protocol.waiter = None
            protocol.transport.close()
            raise ResponseError(f"no response within {timeout} s") from None

    def close(self) -> None:
        """Close the socket."""
        if self._protocol.transport is not None:
            self._protocol.transport.close()


@dataclass
class Recorder:
    """Latencies (seconds) of successful requests, completion times, errors."""

    latencies: array[float] = field(default_factory=lambda: array("d"))
    completed_at: array[float] = field(default_factory=lambda: array("d"))
    service_times: array[float] = field(default_factory=lambda: array("d"))
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    started: float = 0.0
    stopped: float = 0.0
    server_cpu: float | None = None
    """CPU seconds the server used in the measured window (when a probe was given)."""
    client_cpu: float | None = None
    """CPU seconds this process (the load generator) used in the measured window."""

    def error(self, reason: str) -> None:
        """Count a failed request, keeping a few reasons."""
        self.errors += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(reason[:300])

    @property
    def ok(self) -> int:
        """Successful requests."""
        return len(self.latencies)

    @property
    def seconds(self) -> float:
        """Length of the measured window."""
        return max(1e-9, self.stopped - self.started)

    def summary(self) -> dict[str, Any]:
        """Throughput, latency percentiles (milliseconds) and CPU use as plain values."""
        cpu: dict[str, float] = {}
        if self.server_cpu is not None:
            cpu["server_cpu_cores"] = self.server_cpu / self.seconds
            if self.ok:
                cpu["server_cpu_ms_per_request"] = self.server_cpu / self.ok * 1000
        if self.client_cpu is not None:
            cpu["loadgen_cpu_cores"] = self.client_cpu / self.seconds
        return {
            "requests": self.ok,
            "errors": self.errors,
            "error_samples": self.error_samples,
            "seconds": round(self.seconds, 3),
            "rps": self.ok / self.seconds,
            **latency_summary(self.latencies),
            **cpu,
        }


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an ascending sequence (q in 0..1); NaN when empty."""
    if not ordered:
        return math.nan
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))]


def latency_summary(latencies: Sequence[float], prefix: str = "") -> dict[str, float]:
    """p50/p95/p99/max in milliseconds."""
    ordered = sorted(latencies)
    return {
        f"{prefix}p50_ms": percentile(ordered, 0.50) * 1000,
        f"{prefix}p95_ms": percentile(ordered, 0.95) * 1000,
        f"{prefix}p99_ms": percentile(ordered, 0.99) * 1000,
        f"{prefix}max_ms": (ordered[-1] * 1000) if ordered else math.nan,
    }


async def open_connections(host: str, port: int, count: int) -> list[HttpConnection]:
    """`count` connections, opened all at once."""
    return list(await asyncio.gather(*(HttpConnection.open(host, port) for _ in range(count))))


async def closed_loop(
    host: str,
    port: int,
    *,
    connections: int,
    duration: float,
    next_request: Callable[[], Request],
    check: ResponseCheck,
    warmup: float = 0.0,
    timeout: float = 30.0,
    connect_in_window: bool = False,
    cpu_probe: Callable[[], float] | None = None,
) -> Recorder:
    """Each connection sends, waits, sends again, for `warmup` (not recorded) + `duration` s.

    With `connect_in_window` the connections are opened inside the measured window (a spike:
    the service sees every connection and request arrive at once).
    """
    recorder = Recorder()
    loop = asyncio.get_running_loop()
    pool: list[HttpConnection] = []
    if not connect_in_window:
        pool = await open_connections(host, port, connections)
    start = loop.time()
    record_from = start + warmup
    deadline = record_from + duration
    perf = time.perf_counter
    latencies, completed_at = recorder.latencies, recorder.completed_at

    async def worker(index: int) -> None:
        connection = pool[index] if pool else await HttpConnection.open(host, port)
        try:
            while True:
                now = loop.time()
                if now >= deadline:
                    return
                raw, meta = next_request()
                sent = perf()
                try:
                    status, body = await connection.request(raw, timeout)
                except (ResponseError, OSError) as error:
                    if loop.time() >= record_from:
                        recorder.error(f"{type(error).__name__}: {error}")
                    connection.close()
                    connection = await HttpConnection.open(host, port)
                    continue
                done = perf()
                # Every response is checked (writes acknowledged during the warm-up count
                # too); only those in the measured window are recorded.
                ok = check(meta, status, body)
                if loop.time() < record_from:
                    continue
                if ok:
                    latencies.append(done - sent)
                    completed_at.append(done)
                else:
                    recorder.error(f"HTTP {status}: {body[:300]!r}")
        finally:
            connection.close()

    recorder.started = perf() + max(0.0, record_from - loop.time())
    marks: dict[str, float] = {}

    def window_start() -> None:
        marks["client"] = time.process_time()
        if cpu_probe is not None:
            marks["server"] = cpu_probe()

    window = loop.call_at(record_from, window_start) if warmup > 0 else None
    if window is None:
        window_start()
    await asyncio.gather(*(worker(index) for index in range(connections)))
    recorder.stopped = perf()
    if "client" in marks:
        recorder.client_cpu = time.process_time() - marks["client"]
        if cpu_probe is not None:
            recorder.server_cpu = cpu_probe() - marks["server"]
    elif window is not None:
        window.cancel()
    return recorder


async def open_loop(
    host: str,
    port: int,
    *,
    connections: int,
    rate: float,
    duration: float,
    next_request: Callable[[], Request],
    check: ResponseCheck,
    timeout: float = 30.0,
    cpu_probe: Callable[[], float] | None = None,
) -> Recorder:
    """`rate` requests/s for `duration` s over `connections` connections.

    `latencies` are measured from each request's intended send time (queueing included);
    `service_times` from the moment it was actually written.
    """
    recorder = Recorder()
    pool = await open_connections(host, port, connections)
    perf = time.perf_counter
    start = perf() + 0.05
    total = int(rate * duration)
    counter = 0

    async def worker(connection: HttpConnection) -> None:
        nonlocal counter
        try:
            while counter < total:
                index = counter
                counter += 1
                intended = start + index / rate
                wait = intended - perf()
                if wait > 0:
                    await asyncio.sleep(wait)
                raw, meta = next_request()
                sent = perf()
                try:
                    status, body = await connection.request(raw, timeout)
                except (ResponseError, OSError) as error:
                    recorder.error(f"{type(error).__name__}: {error}")
                    connection.close()
                    connection = await HttpConnection.open(host, port)
                    continue
                done = perf()
                if check(meta, status, body):
                    recorder.latencies.append(done - intended)
                    recorder.service_times.append(done - sent)
                    recorder.completed_at.append(done)
                else:
                    recorder.error(f"HTTP {status}: {body[:300]!r}")
        finally:
            connection.close()

    recorder.started = start
    client_before = time.process_time()
    server_before = cpu_probe() if cpu_probe is not None else 0.0
    await asyncio.gather(*(worker(connection) for connection in pool))
    recorder.stopped = perf()
    recorder.client_cpu = time.process_time() - client_before
    if cpu_probe is not None:
        recorder.server_cpu = cpu_probe() - server_before
    return recorder
