"""Per-client rate limits on each backend: the embedded one counts in process, the Redis one
in Redis. A client is told RATE_LIMITED (HTTP 429 + Retry-After, or a WebSocket error);
other clients, and the write token's own bucket, are not affected."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette

from resolvers.auth import WriteTokens
from server.rate_limit import RateLimits
from store.rate_limits import parse_rate
from store.redis.rate_limits import RedisRateLimiter
from tests.support.asgi_app import TOKEN, subscription_to
from tests.support.graphql_client import LEGACY_WS, TRANSPORT_WS, GraphQLHttp
from tests.support.operations import INCREMENT, TOP, TOP_CHANGED

pytestmark = pytest.mark.integration

READS_BURST = 3


@pytest.fixture
def setting_overrides() -> dict[str, Any]:
    # One request an hour after the burst: nothing refills while a test runs.
    return {
        "rate_limit_reads": f"1/h burst {READS_BURST}",
        "rate_limit_writes": "1/h burst 2",
        "trusted_proxies": "127.0.0.1",
    }


@contextlib.asynccontextmanager
async def client_from(app: Starlette, address: str) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client whose requests reach the app from `address`."""
    transport = httpx.ASGITransport(app, client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def refused_count(http: httpx.AsyncClient, reason: str) -> float:
    text = (await http.get("/metrics")).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "leaderboard_rate_limited_total" and sample.labels["reason"] == reason
    )


async def refused_label_sets(http: httpx.AsyncClient) -> list[dict[str, str]]:
    """The label sets of leaderboard_rate_limited_total's series that counted a refusal."""
    text = (await http.get("/metrics")).text
    return [
        sample.labels
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "leaderboard_rate_limited_total" and sample.value
    ]


def assert_rate_limited(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    # 1/h: the next request fits in an hour.
    assert 3590 <= int(response.headers["Retry-After"]) <= 3600
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "RATE_LIMITED"
    assert error["extensions"]["retryAfter"] == int(response.headers["Retry-After"])


async def test_a_client_over_the_read_limit_gets_429_and_others_do_not(app: Starlette) -> None:
    async with (
        client_from(app, "203.0.113.7") as greedy,
        client_from(app, "203.0.113.8") as other,
    ):
        for _ in range(READS_BURST):
            await GraphQLHttp(greedy).data(TOP)
        assert_rate_limited(await GraphQLHttp(greedy).post(TOP))
        # GET /graphql is the same read.
        assert_rate_limited(await greedy.get("/graphql", params={"query": "{ __typename }"}))
        await GraphQLHttp(other).data(TOP)
        # Probes and metrics are never limited.
        assert (await greedy.get("/healthz")).status_code == 200
        assert await refused_count(greedy, "reads") == 2
        assert await refused_count(greedy, "writes") == 0
        # Counted per reason, never per client: one series per client would be unbounded.
        for _ in range(READS_BURST - 1):
            await GraphQLHttp(other).data(TOP)
        assert_rate_limited(await GraphQLHttp(other).post(TOP))
        assert await refused_count(greedy, "reads") == 3
        assert await refused_label_sets(greedy) == [{"reason": "reads"}]


async def test_a_trusted_proxy_is_counted_per_forwarded_client_and_others_per_address(
    app: Starlette,
) -> None:
    async with client_from(app, "127.0.0.1") as proxy, client_from(app, "198.51.100.1") as direct:
        # From the trusted proxy: the client the proxy appended (the right-most untrusted
        # hop), not a left-most one the client could have made up.
        for _ in range(READS_BURST):
            forwarded = {"X-Forwarded-For": "192.0.2.1"}
            assert (await proxy.post("/graphql", json={"query": TOP}, headers=forwarded)).is_success
        spoofed = {"X-Forwarded-For": "10.9.9.9, 192.0.2.1"}
        assert_rate_limited(await proxy.post("/graphql", json={"query": TOP}, headers=spoofed))
        another = {"X-Forwarded-For": "192.0.2.2"}
        assert (await proxy.post("/graphql", json={"query": TOP}, headers=another)).is_success
        # Not from a trusted proxy: the header is ignored, the peer's address counts.
        for number in range(READS_BURST):
            made_up = {"X-Forwarded-For": f"192.0.2.{100 + number}"}
            assert (await direct.post("/graphql", json={"query": TOP}, headers=made_up)).is_success
        assert_rate_limited(
            await direct.post(
                "/graphql", json={"query": TOP}, headers={"X-Forwarded-For": "1.2.3.4"}
            )
        )


async def test_writes_count_per_token_and_invalid_tokens_count_as_reads(app: Starlette) -> None:
    async with client_from(app, "203.0.113.9") as http:
        gql = GraphQLHttp(http, token=TOKEN)
        for number in range(2):
            await gql.data(INCREMENT, {"username": "ann", "delta": number + 1})
        assert_rate_limited(await gql.post(INCREMENT, {"username": "ann", "delta": 1}))
        assert await refused_count(http, "writes") == 1
        # The token's bucket is not the address's: reads without it still pass.
        await GraphQLHttp(http).data(TOP)
        # A made-up token is no way around the read limit: it counts against the address.
        for number in range(READS_BURST - 1):
            assert await GraphQLHttp(http, token=f"guess-{number}").error_codes(
                INCREMENT, {"username": "ann", "delta": 1}
            ) == ["UNAUTHENTICATED"]
        assert_rate_limited(await GraphQLHttp(http, token="guess-x").post(TOP))
        assert await refused_count(http, "reads") == 1


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_a_subscribe_over_the_limit_is_refused_with_rate_limited(
    app: Starlette, http: httpx.AsyncClient, protocol: str
) -> None:
    async with subscription_to(app, protocol) as subscription:
        for _ in range(READS_BURST):
            await subscription.start(TOP_CHANGED)
            assert "errors" not in await subscription.next()
        await subscription.start(TOP_CHANGED)
        refused = await subscription.next()
        assert [error["extensions"]["code"] for error in refused["errors"]] == ["RATE_LIMITED"]
        assert refused["errors"][0]["extensions"]["retryAfter"] > 0
    assert await refused_count(http, "subscribe") == 1


async def test_the_limiter_fails_open_when_redis_is_down() -> None:
    registry = CollectorRegistry()
    limits = RateLimits(
        # Nothing listens on port 9: every check fails at once.
        RedisRateLimiter.from_url("redis://127.0.0.1:9/0", key_prefix="down"),
        reads=parse_rate("1/h burst 1"),
        writes=None,
        tokens=WriteTokens([TOKEN]),
        registry=registry,
    )
    try:
        for _ in range(3):
            assert (await limits.check("192.0.2.1", {})).allowed
    finally:
        await limits.close()
    # One failure: the checks after it skip the limiter for a moment instead of each paying
    # for a connection attempt.
    assert registry.get_sample_value("leaderboard_rate_limiter_failures_total") == 1
    assert registry.get_sample_value("leaderboard_rate_limited_total", {"reason": "reads"}) == 0
