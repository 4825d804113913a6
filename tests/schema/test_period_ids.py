"""Period ids from clients: only ASCII digits, refused before any store is asked."""

from __future__ import annotations

import pytest
import redis.asyncio as redis_asyncio
from starlette.applications import Starlette

from tests.support.graphql_client import GraphQLHttp
from tests.support.shared_services import REDIS_URL

pytestmark = pytest.mark.integration

PERIODS = {
    "arabic-indic": "\u0662\u0660\u0662\u0666-\u0661\u0662",
    "full-width": "\uff12\uff10\uff12\uff16-\uff11\uff12",
    "devanagari": "\u0968\u0966\u0968\u096c-\u0967\u0968",
    "mathematical": "\U0001d7d0\U0001d7ce\U0001d7d0\U0001d7d4-\U0001d7cf\U0001d7d0",
    "mixed": "202\u0666-12",
}
# The fast path answers the first document, Strawberry the second (two root fields).
FAST = "query($period: String) { topPlayers(period: $period) { username } }"
NORMAL = """query($period: String) {
  topPlayers(period: $period) { username }
  player(username: "ana", period: $period) { rank }
  neighborhood(username: "ana", period: $period) { rank }
  leaderboards { playerCount(period: $period) }
}"""


async def app_keys(app: Starlette) -> set[bytes]:
    """The app's Redis keys (none on the embedded backend)."""
    settings = app.state.resources.settings
    if not settings.redis_url:
        return set()
    prefix = settings.key_prefix
    client = redis_asyncio.Redis.from_url(REDIS_URL)
    try:
        return {key async for key in client.scan_iter(f"{prefix}*")}
    finally:
        await client.aclose()


@pytest.mark.parametrize("period", PERIODS.values(), ids=PERIODS.keys())
async def test_periods_with_non_ascii_digits_are_bad_input(
    gql: GraphQLHttp, app: Starlette, period: str
) -> None:
    before = await app_keys(app)
    for document in (FAST, NORMAL):
        body = await gql.execute(document, {"period": period})
        errors = body["errors"]
        assert errors, body
        for error in errors:
            assert error["extensions"]["code"] == "BAD_USER_INPUT", body
            assert "is not a period of board 'global'" in error["message"], body
    assert await app_keys(app) == before
    registry = app.state.resources.metrics.registry
    assert not registry.get_sample_value("leaderboard_rebuilds_total", {"result": "failed"})
    # No false store-error alert either (MariaDB's "Illegal mix of collations" was one).
    store_errors = [
        sample
        for family in registry.collect()
        if family.name == "leaderboard_store_errors"
        for sample in family.samples
        if sample.name.endswith("_total") and sample.value
    ]
    assert store_errors == []
