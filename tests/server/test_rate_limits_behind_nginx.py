"""Rate limits across two `leaderboard serve` processes behind the shipped nginx template,
and the template's own per-address limits (limit_req, limit_conn) and client timeouts.

Clients are told apart by their source address: each client binds its own loopback address
(127.0.0.2, 127.0.0.3), nginx connects to the instances from 127.0.0.1, the trusted proxy,
and forwards the client's address in X-Forwarded-For.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.support.metrics import metric
from tests.support.nginx import TEMPLATE_PATH, NginxProxy
from tests.support.operations import TOP
from tests.support.service_fixtures import ProcessFactory

pytestmark = pytest.mark.integration

BURST = 6


@contextlib.asynccontextmanager
async def client_at(base_url: str, address: str) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client whose connections come from the local `address`."""
    transport = httpx.AsyncHTTPTransport(local_address=address)
    async with httpx.AsyncClient(transport=transport, base_url=base_url, timeout=30) as client:
        yield client


async def read(client: httpx.AsyncClient) -> httpx.Response:
    return await client.post("/graphql", json={"query": TOP})


async def test_a_client_over_the_limit_is_refused_by_every_instance_and_others_are_not(
    service_process: ProcessFactory, redis_mysql_environment: dict[str, str]
) -> None:
    environment = redis_mysql_environment | {
        "LEADERBOARD_RATE_LIMIT_READS": f"1/h burst {BURST}",
        "LEADERBOARD_TRUSTED_PROXIES": "127.0.0.1",
    }
    instances = [service_process(environment) for _ in range(2)]
    await asyncio.gather(*(instance.start() for instance in instances))
    upstreams = [f"127.0.0.1:{instance.port}" for instance in instances]
    async with (
        NginxProxy(upstreams) as proxy,
        client_at(proxy.url, "127.0.0.2") as greedy,
        client_at(proxy.url, "127.0.0.3") as other,
    ):
        statuses = [(await read(greedy)).status_code for _ in range(BURST + 10)]
        # One budget across both instances: exactly the burst passed, wherever it landed.
        assert statuses == [200] * BURST + [429] * 10, proxy.log()
        refused = [
            await metric(instance, "leaderboard_rate_limited_total") for instance in instances
        ]
        assert sum(refused) == 10
        assert all(count > 0 for count in refused), f"nginx used one instance only: {refused}"

        refusal = await read(greedy)
        assert refusal.status_code == 429
        assert int(refusal.headers["Retry-After"]) > 0
        assert refusal.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"

        # Another client behind the same proxy has its own budget.
        for _ in range(BURST):
            assert (await read(other)).status_code == 200

    # The same client calling an instance directly is the same client (no proxy: its own
    # address counts), still over its limit.
    async with client_at(instances[0].url, "127.0.0.2") as direct:
        assert (await read(direct)).status_code == 429


async def test_nginx_refuses_a_flood_from_one_address_itself() -> None:
    # No instance behind it: what is not refused gets 502. The requests are pipelined on one
    # connection, so they reach nginx faster than its rate whatever the machine's load.
    request = b"GET /graphql?query=%7B__typename%7D HTTP/1.1\r\nHost: test\r\n\r\n"
    last = (
        b"GET /graphql?query=%7B__typename%7D HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    )
    async with NginxProxy(["127.0.0.1:9"]) as proxy:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", proxy.port, local_addr=("127.0.0.4", 0)
        )
        writer.write(request * 300 + last)
        await writer.drain()
        answers = await asyncio.wait_for(reader.read(), timeout=60)
        writer.close()
    statuses = [
        int(line.split()[1]) for line in answers.split(b"\r\n") if line.startswith(b"HTTP/1.1 ")
    ]
    # The burst (200 at once) passes to the (missing) upstream; the first request beyond it
    # is refused, and nginx closes the connection after refusing.
    assert statuses[-1] == 429, statuses
    assert 200 <= statuses.count(502) < 300
    refusal = answers[answers.index(b"HTTP/1.1 429") :]
    head, _, body = refusal.partition(b"\r\n\r\n")
    assert b"\r\nRetry-After: 1" in head
    assert b'"code":"RATE_LIMITED"' in body.split(b"HTTP/1.1 ")[0]


def template_connection_limit() -> int:
    """The shipped template's `limit_conn` per address."""
    found = re.search(r"limit_conn leaderboard_connections (\d+);", TEMPLATE_PATH.read_text())
    assert found, "the nginx template has no per-address limit_conn"
    return int(found.group(1))


async def test_nginx_refuses_connections_over_its_per_address_limit() -> None:
    # An upstream that never answers: each request nginx passes on stays in flight, and
    # its client connection counts against the address (keep-alive and WebSockets alike).
    limit = template_connection_limit()
    upstream_connections: list[asyncio.StreamWriter] = []
    arrived = asyncio.Condition()

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_connections.append(writer)
        async with arrived:
            arrived.notify_all()
        await reader.read()

    async def passed_on(count: int) -> None:
        """Wait until nginx has passed `count` requests on (each holds an upstream one)."""
        async with arrived:
            await asyncio.wait_for(
                arrived.wait_for(lambda: len(upstream_connections) >= count), timeout=30
            )

    async def send(address: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", proxy.port, local_addr=(address, 0)
        )
        # /overlay has no limit_req: only the connection limit applies.
        writer.write(b"GET /overlay/global HTTP/1.1\r\nHost: test\r\n\r\n")
        await writer.drain()
        return reader, writer

    upstream = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = upstream.sockets[0].getsockname()[1]
    clients: list[asyncio.StreamWriter] = []
    try:
        async with NginxProxy([f"127.0.0.1:{port}"]) as proxy:
            for _ in range(limit):
                clients.append((await send("127.0.0.5"))[1])
            # Every one of them is in flight (nginx proxy_read_timeout is 60 s).
            await passed_on(limit)
            reader, writer = await send("127.0.0.5")
            clients.append(writer)
            answer = await asyncio.wait_for(reader.read(4096), timeout=30)
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 429"), answer
            assert b"\r\nRetry-After: 1" in head
            assert b'"code":"RATE_LIMITED"' in body
            assert len(upstream_connections) == limit
            # Another address is not affected: its request is passed on.
            clients.append((await send("127.0.0.6"))[1])
            await passed_on(limit + 1)
    finally:
        for writer in clients + upstream_connections:
            writer.close()
        upstream.close()
        await upstream.wait_closed()


async def closed_by_peer(reader: asyncio.StreamReader, within: float) -> bool:
    """Whether the peer closes (or resets) the connection within `within` seconds."""
    try:
        async with asyncio.timeout(within):
            while await reader.read(4096):
                pass
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True


async def test_nginx_cuts_off_slow_headers_and_slow_bodies() -> None:
    # The template's client_header_timeout / client_body_timeout are 10 s; nginx's defaults
    # are 60 s. Nothing slow reaches an instance: nginx reads the head and body first.
    passed_on: list[asyncio.StreamWriter] = []

    async def upstream_seen(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        passed_on.append(writer)

    upstream = await asyncio.start_server(upstream_seen, "127.0.0.1", 0)
    port = upstream.sockets[0].getsockname()[1]
    try:
        async with NginxProxy([f"127.0.0.1:{port}"]) as proxy:
            slow_head = await asyncio.open_connection("127.0.0.1", proxy.port)
            slow_head[1].write(b"POST /graphql HTTP/1.1\r\nHost: test\r\n")
            slow_body = await asyncio.open_connection("127.0.0.1", proxy.port)
            slow_body[1].write(
                b"POST /graphql HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
                b'Content-Length: 100\r\n\r\n{"query":'
            )
            # Well under nginx's 60 s defaults, well over the template's 10 s.
            head_closed, body_closed = await asyncio.gather(
                closed_by_peer(slow_head[0], 30), closed_by_peer(slow_body[0], 30)
            )
            assert head_closed
            assert body_closed
            assert passed_on == []
            for _, writer in (slow_head, slow_body):
                writer.close()
    finally:
        upstream.close()
        await upstream.wait_closed()
