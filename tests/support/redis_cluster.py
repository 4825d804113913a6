"""A private Redis Cluster on loopback: real `redis-server` nodes, created by `redis-cli`.

Masters (and optionally one replica each) are private Redis servers (tests/support/
private_servers.py) with cluster mode on; the shared Redis of the machine is never
touched. Failover tests kill a master and wait for its replica to take over.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from tests.support.private_servers import PrivateRedis
from tests.support.service_process import free_port

NODE_TIMEOUT_MS = 1000
"""How long a master may be silent before the cluster fails it over (small: quick tests)."""


class ClusterNode(PrivateRedis):
    """One `redis-server` of the cluster: a private Redis with cluster mode on."""

    def __init__(self) -> None:
        super().__init__()
        self.bus_port = free_port()

    @property
    def address(self) -> str:
        """host:port."""
        return f"127.0.0.1:{self.port}"

    def _command(self) -> list[str]:
        return [
            *super()._command(),
            "--cluster-enabled",
            "yes",
            "--cluster-port",
            str(self.bus_port),
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            str(NODE_TIMEOUT_MS),
        ]

    def client(self) -> redis.Redis:
        """A plain (non-cluster, synchronous) client of this node."""
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def info(self, section: str) -> dict[str, str]:
        """CLUSTER INFO or INFO <section> as a dict."""
        with self.client() as client:
            text = (
                client.execute_command("CLUSTER", "INFO")
                if section == "cluster"
                else client.execute_command("INFO", section)
            )
        if isinstance(text, dict):
            return {str(key): str(value) for key, value in text.items()}
        lines = text.decode() if isinstance(text, bytes) else str(text)
        return dict(
            line.split(":", 1) for line in lines.splitlines() if ":" in line and line[0] != "#"
        )


class PrivateRedisCluster:
    """A Redis Cluster of `masters` masters, each with `replicas` replicas."""

    def __init__(self, masters: int = 3, replicas: int = 0) -> None:
        self.nodes = [ClusterNode() for _ in range(masters * (1 + replicas))]
        self._replicas = replicas

    def url(self) -> str:
        """A seed URL: any one node; clients discover the rest."""
        return f"redis://{self.nodes[0].address}/0"

    def start(self) -> None:
        """Start every node, create the cluster and wait until it serves every slot.

        Synchronous, the nodes started on an event loop of a thread of their own: callers
        are sync fixtures (maybe reached from a running loop) and benchmarks.
        """

        async def start_nodes() -> None:
            await asyncio.gather(*(node.start() for node in self.nodes))

        with ThreadPoolExecutor(1) as thread:
            thread.submit(asyncio.run, start_nodes()).result()
        subprocess.run(
            [
                "redis-cli",
                "--cluster",
                "create",
                *(node.address for node in self.nodes),
                "--cluster-replicas",
                str(self._replicas),
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        self.wait_until_healthy()

    def wait_until_healthy(self, timeout: float = 30.0) -> None:
        """Until every live node says the cluster is ok with all 16384 slots served."""
        deadline = time.monotonic() + timeout
        while True:
            states = [node.info("cluster") for node in self.live_nodes()]
            if all(
                state.get("cluster_state") == "ok" and state.get("cluster_slots_ok") == "16384"
                for state in states
            ):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"cluster not healthy in {timeout} s: {states}")
            time.sleep(0.1)

    def live_nodes(self) -> list[ClusterNode]:
        """Nodes whose process runs."""
        return [node for node in self.nodes if node.running]

    def master_of(self, key: str) -> ClusterNode:
        """The node serving `key`'s slot now."""
        with self.live_nodes()[0].client() as client:
            slot = int(client.execute_command("CLUSTER", "KEYSLOT", key))
            for start, end, master, *_ in client.execute_command("CLUSTER", "SLOTS"):
                if int(start) <= slot <= int(end):
                    port = int(master[1])
                    return next(node for node in self.nodes if node.port == port)
        raise RuntimeError(f"no node serves the slot of {key!r}")

    def wait_for_replication(self, timeout: float = 30.0) -> None:
        """Until every replica has finished its initial sync with its master."""
        deadline = time.monotonic() + timeout
        while True:
            replicas = [
                node.info("replication")
                for node in self.live_nodes()
                if node.info("replication").get("role") == "slave"
            ]
            if all(info.get("master_link_status") == "up" for info in replicas):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"replicas not in sync in {timeout} s: {replicas}")
            time.sleep(0.1)

    def cleanup(self) -> None:
        """Kill every node and delete their directories."""
        for node in self.nodes:
            node.cleanup()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[PrivateRedisCluster]:
    """Three masters without replicas, shared by the tests that only need a cluster."""
    cluster = PrivateRedisCluster(masters=3)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.cleanup()
