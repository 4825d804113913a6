"""The compose stack's shape on podman: two service containers behind the nginx container,
on the Redis and MariaDB containers, scraped by the Prometheus container.

Containers are started with `podman run` on a private network, named as in
docker/compose.yml and configured from it (the instances' environment, command and
stop_grace_period; nginx's template; Prometheus's configuration), with the test images of
tests/containers/Containerfile in place of the official images. The tests reach the
containers only through ports published on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import yaml
from websockets.asyncio.client import connect

from tests.support.graphql_client import TRANSPORT_WS, GraphQLHttp, Subscription
from tests.support.nginx import render_template
from tests.support.podman import (
    DATABASE_INIT,
    FIGURES,
    INSTANCES,
    LOOPBACK,
    ROOT,
    TOKEN,
    Stack,
    free_port,
    podman,
    seconds,
    wait_command,
    wait_healthy,
    wait_http,
)
from tests.support.scale_out import cross_instance_writes_reads_and_subscriptions
from tests.support.service_fixtures import WebSocketText
from tests.support.writer import Writer

pytestmark = pytest.mark.integration

COMPOSE = yaml.safe_load((ROOT / "docker" / "compose.yml").read_text())
# Flushes 3 s apart instead of 100 ms: whenever the drain test stops an instance, seconds of
# acknowledged writes wait in its buffer, and only the SIGTERM drain brings them to MySQL
# (a SIGKILL loses them: the test fails with `podman stop --time 0`).
SLOW_FLUSH = {"LEADERBOARD_FLUSH_INTERVAL_MS": "3000"}


def compose_environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment with compose's ${NAME:?..} / ${NAME:-default} filled in."""
    values = {"LEADERBOARD_WRITE_TOKEN": TOKEN}

    def substitute(match: re.Match[str]) -> str:
        name, operator, default = match.group(1), match.group(2), match.group(3)
        if name in values:
            return values[name]
        assert operator == ":-", f"{name} must be set"
        return default

    pattern = re.compile(r"\$\{([A-Z_]+)(:[?-])([^}]*)\}")
    return {
        key: pattern.sub(substitute, str(value)) for key, value in service["environment"].items()
    }


def stored_event_ids(mariadb: str) -> set[str]:
    """Every event id in the history table, read inside the MariaDB container."""
    statement = "SELECT event_id FROM leaderboard.score_events"
    result = podman("exec", mariadb, "mariadb", "--batch", "--skip-column-names", "-e", statement)
    return set(result.stdout.split())


@dataclass
class Running:
    """The started stack and its loopback ports."""

    stack: Stack
    instances: dict[str, str]
    """Service name -> container name."""
    instance_urls: dict[str, str]
    nginx_url: str
    prometheus_url: str
    mariadb: str
    """The MariaDB container's name."""


@pytest.fixture(scope="module")
def running(
    service_image: str, test_images: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Running]:
    """Redis, MariaDB, both instances, nginx and Prometheus, each ready."""
    services = COMPOSE["services"]
    directory = tmp_path_factory.mktemp("stack")
    stack = Stack()
    try:
        # The official redis image adds --protected-mode no to a bare redis-server command
        # (no password on a private network); Debian's binary needs it said.
        stack.run(
            "redis",
            test_images["redis"],
            *services["redis"]["command"],
            "--protected-mode",
            "no",
        )
        # The official mariadb image creates MARIADB_DATABASE and MARIADB_USER; here an
        # init file does.
        (directory / "init.sql").write_text(DATABASE_INIT)
        mariadb = stack.run(
            "mariadb",
            test_images["mariadb"],
            "mariadbd",
            "--user=mysql",
            "--bind-address=0.0.0.0",
            "--init-file=/init.sql",
            volumes=[f"{directory / 'init.sql'}:/init.sql:ro"],
        )
        wait_command(
            mariadb,
            ["mariadb", "-uleaderboard", "-pleaderboard", "-h127.0.0.1", "-e", "SELECT 1"],
            timeout=120,
        )

        instances, instance_urls = {}, {}
        for name in INSTANCES:
            port = free_port()
            instances[name] = stack.run(
                name,
                service_image,
                *services[name]["command"],
                environment=compose_environment(services[name]) | SLOW_FLUSH,
                ports={port: 8000},
            )
            instance_urls[name] = f"http://{LOOPBACK}:{port}"
        started = time.monotonic()
        for name in INSTANCES:
            wait_healthy(instances[name], timeout=180)
        FIGURES["start-up to healthy (two instances, Redis and MariaDB)"] = (
            f"{time.monotonic() - started:.1f} s"
        )
        for url in instance_urls.values():
            wait_http(f"{url}/readyz", timeout=60)
        FIGURES["start-up to ready (/readyz)"] = f"{time.monotonic() - started:.1f} s"

        # nginx renders the same template compose mounts, with compose's values.
        nginx_environment = services["nginx"]["environment"]
        listen_port = int(nginx_environment["LEADERBOARD_NGINX_LISTEN_PORT"])
        (directory / "leaderboard.conf").write_text(
            render_template([f"{name}:8000" for name in INSTANCES], listen_port)
        )
        nginx_port = free_port()
        stack.run(
            "nginx",
            test_images["nginx"],
            volumes=[f"{directory / 'leaderboard.conf'}:/etc/nginx/conf.d/leaderboard.conf:ro"],
            ports={nginx_port: listen_port},
        )
        nginx_url = f"http://{LOOPBACK}:{nginx_port}"
        wait_http(f"{nginx_url}/readyz", timeout=60)

        prometheus_port = free_port()
        config = ROOT / "docker" / "prometheus" / "prometheus.yml"
        stack.run(
            "prometheus",
            test_images["prometheus"],
            "--config.file=/etc/prometheus/prometheus.yml",
            "--storage.tsdb.path=/tmp/prometheus",
            volumes=[f"{config}:/etc/prometheus/prometheus.yml:ro"],
            ports={prometheus_port: 9090},
        )
        prometheus_url = f"http://{LOOPBACK}:{prometheus_port}"
        wait_http(f"{prometheus_url}/-/ready", timeout=60)

        yield Running(
            stack,
            instances,
            instance_urls,
            nginx_url,
            prometheus_url,
            mariadb,
        )
    finally:
        stack.remove()


async def test_instances_behind_nginx_share_writes_reads_and_subscriptions(
    running: Running,
) -> None:
    first, second = (running.instance_urls[name] for name in INSTANCES)
    async with (
        httpx.AsyncClient(base_url=running.nginx_url, timeout=30) as through_nginx,
        httpx.AsyncClient(base_url=second, timeout=30) as on_second,
        connect(
            first.replace("http", "ws") + "/graphql",
            subprotocols=[TRANSPORT_WS],  # type: ignore[list-item]
        ) as socket,
    ):
        await cross_instance_writes_reads_and_subscriptions(
            GraphQLHttp(through_nginx, token=TOKEN),
            GraphQLHttp(on_second, token=TOKEN),
            Subscription(WebSocketText(socket), TRANSPORT_WS),
        )


async def test_prometheus_scrapes_both_instances(running: Running) -> None:
    expected = {f"{name}:8000" for name in INSTANCES}
    async with httpx.AsyncClient(base_url=running.prometheus_url, timeout=10) as client:
        deadline = asyncio.get_running_loop().time() + 60
        while True:
            body = (await client.get("/api/v1/targets")).json()
            health = {
                target["labels"]["instance"]: target["health"]
                for target in body["data"]["activeTargets"]
                if target["labels"]["job"] == "leaderboard"
            }
            if health == dict.fromkeys(expected, "up"):
                break
            assert asyncio.get_running_loop().time() < deadline, health
            await asyncio.sleep(1)
        # The service's own series are in: what the dashboard queries.
        query = {"query": "leaderboard_graphql_operations_total"}
        result = (await client.get("/api/v1/query", params=query)).json()["data"]["result"]
        assert {series["metric"]["instance"] for series in result} <= expected
        assert result


async def test_sigterm_during_writes_loses_nothing_acknowledged(running: Running) -> None:
    name = INSTANCES[1]
    grace = seconds(COMPOSE["services"][name]["stop_grace_period"])
    async with httpx.AsyncClient(base_url=running.instance_urls[name], timeout=30) as client:
        writer = Writer(GraphQLHttp(client, token=TOKEN), concurrency=4)
        writer.start()
        await writer.wait_for("accepted")
        await asyncio.sleep(2)
        started = time.monotonic()
        # podman stop: STOPSIGNAL (SIGTERM), then SIGKILL after --time seconds.
        await asyncio.to_thread(podman, "stop", "--time", str(int(grace)), running.instances[name])
        stop_seconds = time.monotonic() - started
        await writer.stop()
    exit_code = podman("inspect", running.instances[name], "--format", "{{.State.ExitCode}}")
    stored = stored_event_ids(running.mariadb)
    lost = writer.acknowledged_ids - stored
    FIGURES["drain on podman stop"] = (
        f"{len(writer.acknowledged_ids)} writes acknowledged, {len(lost)} lost, "
        f"stopped in {stop_seconds:.1f} s (grace {grace:.0f} s), exit code "
        f"{exit_code.stdout.strip()}"
    )
    assert writer.other_errors == []
    assert len(writer.acknowledged_ids) > 0
    assert lost == set()
    # Exited by itself after draining, not killed at the end of the grace period (137).
    assert exit_code.stdout.strip() == "0"
    assert stop_seconds < grace
