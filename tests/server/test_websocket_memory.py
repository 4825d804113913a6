"""Service memory per idle WebSocket subscriber stays small (issue 15), against a real
`leaderboard serve` on Redis + MariaDB: CONNECTIONS real WebSocket clients offering
permessage-deflate (as browsers do), one `rankChanged` each; the service's RSS growth per
connection once every subscriber got its first payload. It was 84 KiB before #15's cuts
(41 KiB of them zlib state), about 28 KiB after (docs/performance.md); the bound leaves
generous room for allocator noise and fails if compression or a few KiB per connection come
back. The clients are the benchmark's (benchmarks/ws_memory.py, `make bench` scenario
`wsmemory`).

Run alone with `-s` to see the figure (a few seconds).
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from benchmarks.ws_memory import measure
from tests.support.graphql_client import GraphQLHttp
from tests.support.service_fixtures import TOKEN, ProcessFactory

pytestmark = pytest.mark.integration

CONNECTIONS = 500
MAX_KIB_PER_CONNECTION = 45.0
BOARD = "alltime"
SEED = "mutation($i: [ScoreIncrement!]!) { incrementScores(increments: $i) { applied } }"


def rss(pid: int) -> int:
    """The resident set size of a process, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.mark.timeout(300)
async def test_an_idle_subscriber_costs_the_service_little_memory(
    service_process: ProcessFactory, redis_mysql_environment: dict[str, str]
) -> None:
    async with service_process(redis_mysql_environment) as service:
        assert service.process is not None
        pid = service.process.pid
        async with httpx.AsyncClient(base_url=service.url, timeout=30) as client:
            gql = GraphQLHttp(client, token=TOKEN)
            for start in range(0, CONNECTIONS + 100, 500):
                increments = [
                    {"username": f"p{number}", "delta": number + 1, "board": BOARD}
                    for number in range(start, start + 500)
                ]
                await gql.data(SEED, {"i": increments})
        url = service.url.replace("http", "ws") + "/graphql"
        measured = await measure(url, BOARD, CONNECTIONS, True, lambda: rss(pid))

    print(
        f"\n{CONNECTIONS} idle rankChanged subscribers offering permessage-deflate: "
        f"{measured.per_connection_kib:.1f} KiB of service RSS each "
        f"(negotiated: {measured.negotiated})"
    )
    assert not measured.negotiated
    assert measured.per_connection_kib < MAX_KIB_PER_CONNECTION
