"""Anonymous reads leave no lasting state in Redis (issue 17 H): reading a period that
has no history rows (far past, far future) keeps at most a short-lived loaded marker."""

from __future__ import annotations

import pytest
import redis.asyncio as redis_asyncio

from tests.support.graphql_client import GraphQLHttp
from tests.support.operations import PLAYER, TOP
from tests.support.shared_services import REDIS_URL

pytestmark = pytest.mark.integration

PERIODS = {"global": ("2100-01", "1999-12", "2000-02"), "daily-race": ("2100-01-01", "2001-03-04")}


@pytest.fixture
def backend() -> str:
    """Redis state is what is checked: the Redis + MariaDB deployment only."""
    return "redis-mysql"


async def test_anonymous_reads_of_empty_periods_leave_no_lasting_state(
    gql: GraphQLHttp, redis_prefix: str
) -> None:
    anonymous = GraphQLHttp(gql.client)
    raw = redis_asyncio.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        before = {name async for name in raw.scan_iter(match=f"{redis_prefix}:*")}
        for board, periods in PERIODS.items():
            for period in periods:
                variables = {"board": board, "period": period}
                data = await anonymous.data(TOP, variables)
                assert data["topPlayers"] == []
                data = await anonymous.data(PLAYER, variables | {"username": "ann"})
                assert data["player"] is None
        created = {name async for name in raw.scan_iter(match=f"{redis_prefix}:*")} - before
        assert created, "the reads were expected to load the periods"
        lasting = {}
        for name in created:
            ttl = await raw.pttl(name)
            if not 0 < ttl <= 60_000:
                lasting[name] = ttl
        assert lasting == {}
    finally:
        await raw.aclose()
