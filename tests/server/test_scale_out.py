"""Scale-out on real engines: instances behind nginx, on a Redis Cluster with replicas,
a sharded board, and a master killed mid-load."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest
from websockets.asyncio.client import connect

from store.boards import parse_boards
from store.redis import RedisRankingStore
from tests.support.cli import leaderboard
from tests.support.graphql_client import TRANSPORT_WS, GraphQLHttp, Subscription
from tests.support.history_database import history_totals
from tests.support.nginx import NginxProxy
from tests.support.operations import PLAYER, TOP
from tests.support.redis_cluster import PrivateRedisCluster
from tests.support.scale_out import cross_instance_writes_reads_and_subscriptions
from tests.support.service_fixtures import TOKEN, ProcessFactory, WebSocketText
from tests.support.writer import PLAYERS, Writer

pytestmark = pytest.mark.integration

BOARDS = "global:monthly:shards=4,alltime:never"


async def cluster_totals(cluster: PrivateRedisCluster, prefix: str) -> dict[str, int]:
    """The global board's live totals, read from the cluster through the store."""
    boards = parse_boards(BOARDS)
    store = RedisRankingStore.from_url(
        cluster.url(),
        key_prefix=prefix,
        boards=boards,
        retention=timedelta(days=1),
        cluster=True,
    )
    try:
        return await store.totals("global", boards[0].current_period())
    finally:
        await store.close()


async def test_instances_behind_nginx_on_a_cluster_survive_a_master_failover(
    service_process: ProcessFactory,
    redis_mysql_environment: dict[str, str],
) -> None:
    cluster = PrivateRedisCluster(masters=3, replicas=1)
    try:
        await asyncio.to_thread(cluster.start)
        await asyncio.to_thread(cluster.wait_for_replication)
        environment = redis_mysql_environment | {
            "LEADERBOARD_REDIS_URL": cluster.url(),
            "LEADERBOARD_REDIS_CLUSTER": "true",
            "LEADERBOARD_BOARDS": BOARDS,
            "LEADERBOARD_RESYNC_INTERVAL_SECONDS": "1",
        }
        first, second = service_process(environment), service_process(environment)
        await asyncio.gather(first.start(), second.start())
        async with (
            NginxProxy(
                [first.url.removeprefix("http://"), second.url.removeprefix("http://")]
            ) as proxy,
            httpx.AsyncClient(base_url=proxy.url, timeout=30) as through_nginx,
            httpx.AsyncClient(base_url=second.url, timeout=30) as on_second,
            connect(
                first.url.replace("http", "ws") + "/graphql",
                subprotocols=[TRANSPORT_WS],  # type: ignore[list-item]
            ) as socket,
        ):
            await cross_instance_writes_reads_and_subscriptions(
                GraphQLHttp(through_nginx, token=TOKEN),
                GraphQLHttp(on_second, token=TOKEN),
                Subscription(WebSocketText(socket), TRANSPORT_WS),
            )
            await writes_through_a_master_failover(
                cluster, environment, GraphQLHttp(through_nginx, token=TOKEN)
            )
            await an_emptied_cluster_is_rebuilt_from_mysql(
                cluster, environment, GraphQLHttp(through_nginx, token=TOKEN)
            )
    finally:
        await asyncio.to_thread(cluster.cleanup)


async def writes_through_a_master_failover(
    cluster: PrivateRedisCluster, environment: dict[str, str], gql: GraphQLHttp
) -> None:
    """Kill the master of one shard under load: writes are refused, never lost, come back
    once its replica is promoted; reconcile makes Redis equal MySQL again."""
    writer = Writer(gql, concurrency=2)
    writer.start()
    await writer.wait_for("accepted")
    prefix = environment["LEADERBOARD_KEY_PREFIX"]
    period = parse_boards(BOARDS)[0].current_period()
    victim_board_shard = parse_boards(BOARDS)[0].shard_of(PLAYERS[0])
    victim = await asyncio.to_thread(
        cluster.master_of, f"{prefix}:{{global|{period}|{victim_board_shard}}}:ranking"
    )
    victim.kill_now()
    await writer.wait_for("refused", timeout=30)
    await asyncio.to_thread(cluster.wait_until_healthy, 60)
    await writer.wait_for("accepted", timeout=60)
    accepted_after_failover = writer.total
    await writer.wait_for("accepted", timeout=30)
    await writer.stop()
    assert writer.total > accepted_after_failover
    assert writer.other_errors == []

    # The instances' buffers reach MySQL within a flush interval or two.
    acknowledged = dict(writer.acknowledged)
    database_url = environment["LEADERBOARD_DATABASE_URL"]
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        history = await history_totals(database_url)
        stored = {name: history.get(name, 0) for name in acknowledged}
        if stored == acknowledged or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.05)
    assert stored == acknowledged

    code, output = await leaderboard(environment, "reconcile", "--board", "global")
    assert code == 0, output
    live = await cluster_totals(cluster, prefix)
    assert {name: live.get(name) for name in history} == history


async def an_emptied_cluster_is_rebuilt_from_mysql(
    cluster: PrivateRedisCluster, environment: dict[str, str], gql: GraphQLHttp
) -> None:
    """Every master loses its data: the next request rebuilds the sharded board from
    MySQL (one claim for all its shards) and the standings are MySQL's again."""
    history = await history_totals(environment["LEADERBOARD_DATABASE_URL"])
    for node in cluster.live_nodes():
        with node.client() as client:
            if node.info("replication").get("role") == "master":
                client.flushall()
    # A player read: the top may still be answered from an instance's cache (100 ms).
    name, score = next(iter(history.items()))
    standing = await gql.data(PLAYER, {"username": name})
    assert standing["player"]["score"] == score
    top = await gql.data(TOP, {"limit": 100})
    shown = {row["username"]: row["score"] for row in top["topPlayers"]}
    expected = dict(sorted(history.items(), key=lambda item: (-item[1], item[0]))[:100])
    assert shown == expected
    live = await cluster_totals(cluster, environment["LEADERBOARD_KEY_PREFIX"])
    assert live == history
