"""The memory probe of issue 17, rerun against a real `leaderboard serve` on Redis + MariaDB:
1,100 unique 255 KB documents (`{ __typename } #<uuid><padding>`) once took a process from
83 MB to about 1 GB of RSS. Documents over the character limit are refused before any cache
or parse, and the caches hold bounded bytes, so RSS stays within 50 MB of its start; the
same holds for unique documents just within the limit, which are parsed and cached.

Run alone with `-s` to see the figures (about 10 s on an idle machine).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from schema.documents import MAX_DOCUMENT_CHARS
from tests.support.documents import padded_document
from tests.support.service_fixtures import ProcessFactory

pytestmark = pytest.mark.integration

PROBE_DOCUMENTS = 1_100
WITHIN_DOCUMENTS = 300  # weighing 20 MB parsed: more than every cache's budget together
PROBE_CHARS = 255_000  # with its JSON, within the 256 KiB body limit
CLIENTS = 8
MAX_GROWTH = 50 * 1024 * 1024


def rss(pid: int) -> int:
    """The resident set size of a process, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


async def flood(url: str, document: Callable[[int], str], count: int) -> list[float]:
    """Send `count` documents from CLIENTS clients; every answer is a coded GraphQL body.
    Returns each request's seconds."""
    seconds: list[float] = []
    numbers = iter(range(count))

    async def client(http: httpx.AsyncClient) -> None:
        for number in numbers:
            started = time.perf_counter()
            response = await http.post("/graphql", json={"query": document(number)})
            seconds.append(time.perf_counter() - started)
            assert response.status_code < 500, response.text
            assert "errors" in response.json() or "data" in response.json()

    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        await asyncio.gather(*(client(http) for _ in range(CLIENTS)))
    return seconds


@pytest.mark.timeout(600)
async def test_unique_large_documents_leave_rss_near_its_start(
    service_process: ProcessFactory, redis_mysql_environment: dict[str, str]
) -> None:
    async with service_process(redis_mysql_environment) as service:
        assert service.process is not None
        pid = service.process.pid
        await flood(service.url, lambda _: "{ topPlayers { username } leaderboards { id } }", 200)
        start = rss(pid)

        probe = await flood(
            service.url,
            lambda _: padded_document("{ __typename }", PROBE_CHARS),
            PROBE_DOCUMENTS,
        )
        after_probe = rss(pid)

        # Just within the limit: parsed, planned and cached (half the fast path's shape).
        heads = ("{ __typename }", "{ topPlayers(limit: 1) { username } }")
        within = await flood(
            service.url,
            lambda number: padded_document(heads[number % 2], MAX_DOCUMENT_CHARS),
            WITHIN_DOCUMENTS,
        )
        after_within = rss(pid)

    megabyte = 1024 * 1024
    print(
        f"\nRSS start {start / megabyte:.1f} MB; after {PROBE_DOCUMENTS} unique "
        f"{PROBE_CHARS // 1000} KB documents {after_probe / megabyte:.1f} MB "
        f"(median {statistics.median(probe) * 1000:.1f} ms each, {CLIENTS} clients); after "
        f"{WITHIN_DOCUMENTS} unique {MAX_DOCUMENT_CHARS}-character documents "
        f"{after_within / megabyte:.1f} MB (median {statistics.median(within) * 1000:.1f} ms)"
    )
    assert after_probe - start < MAX_GROWTH
    assert after_within - start < MAX_GROWTH
