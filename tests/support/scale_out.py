"""The scale-out check that the process tests and the container stack both run."""

from __future__ import annotations

from tests.support.graphql_client import GraphQLHttp, Subscription
from tests.support.operations import INCREMENT, RANK_CHANGED, TOP


async def cross_instance_writes_reads_and_subscriptions(
    through_nginx: GraphQLHttp, on_second: GraphQLHttp, on_first: Subscription
) -> None:
    """A subscriber on the first instance sees a write made on the second (SSUBSCRIBE);
    nginx spreads reads and writes over both, which agree."""
    await through_nginx.data(INCREMENT, {"username": "watched", "delta": 10})
    await on_first.init()
    await on_first.start(RANK_CHANGED, {"username": "watched"})
    assert (await on_first.next())["data"]["rankChanged"]["rank"] == 1
    await on_second.data(INCREMENT, {"username": "rival", "delta": 25})
    passed = (await on_first.next(timeout=10))["data"]["rankChanged"]
    assert (passed["previousRank"], passed["rank"]) == (1, 2)

    for index in range(20):
        await through_nginx.data(INCREMENT, {"username": f"spread{index}", "delta": index + 1})
    tops = [await through_nginx.data(TOP, {"limit": 5}) for _ in range(4)]
    expected = [
        ("rival", 25, 1),
        ("spread19", 20, 2),
        ("spread18", 19, 3),
        ("spread17", 18, 4),
        ("spread16", 17, 5),
    ]
    for top in tops:
        assert [(p["username"], p["score"], p["rank"]) for p in top["topPlayers"]] == expected
