"""docker/compose.yml itself, run by podman-compose with an override file that swaps in the
test images and this machine's limits.

What cannot work under podman here, and what the other tests do instead
(tests/containers/test_stack.py, plain `podman run`):
- `depends_on: condition: service_healthy`: podman-compose ignores the condition with
  podman older than 4.6 (this machine has Debian's 4.3), and podman runs HEALTHCHECKs from
  systemd timers, which this machine does not have. Start-up order still follows
  depends_on; readiness is polled here.
- `build:` in compose: podman's default build isolation cannot set rlimits here; the image
  is built by `make image`'s script (chroot isolation) and compose runs with --no-build.
- the official images' own set-up (redis's protected mode off, mariadb's
  MARIADB_USER/MARIADB_DATABASE, nginx's template rendering), which the override does
  with the test images' commands and mounts; Grafana is not started (no package here).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.graphql_client import GraphQLHttp
from tests.support.nginx import render_template
from tests.support.operations import INCREMENT, PLAYER
from tests.support.podman import (
    DATABASE_INIT,
    FIGURES,
    INSTANCES,
    LOOPBACK,
    ROOT,
    TOKEN,
    free_port,
    podman,
    seconds,
    wait_http,
)

pytestmark = pytest.mark.integration

COMPOSE_FILE = ROOT / "docker" / "compose.yml"
SERVICES = ("redis", "mariadb", *INSTANCES, "nginx", "prometheus")
LIMITS = "    ulimits: {nofile: 1024, nproc: 1024}\n    runtime: runc\n"


def override(
    directory: Path, images: dict[str, str], service_image: str, ports: dict[str, int]
) -> str:
    """The override file: test images, loopback ports, this machine's limits."""
    (directory / "init.sql").write_text(DATABASE_INIT)
    (directory / "leaderboard.conf").write_text(
        render_template([f"{name}:8000" for name in INSTANCES], 8080)
    )
    instances = "".join(f"  {name}:\n    image: {service_image}\n{LIMITS}" for name in INSTANCES)
    return f"""services:
{instances}  redis:
    image: {images["redis"]}
    command: ["redis-server", "--save", "", "--appendonly", "no", "--protected-mode", "no"]
{LIMITS}  mariadb:
    image: {images["mariadb"]}
    command: ["mariadbd", "--user=mysql", "--bind-address=0.0.0.0", "--init-file=/init.sql"]
    volumes: !override
      - mariadb-data:/var/lib/mysql
      - {directory / "init.sql"}:/init.sql:ro
    healthcheck: !override
      test: ["CMD", "mariadb", "-uleaderboard", "-pleaderboard", "-h127.0.0.1", "-e", "SELECT 1"]
{LIMITS}  nginx:
    image: {images["nginx"]}
    volumes: !override
      - {directory / "leaderboard.conf"}:/etc/nginx/conf.d/leaderboard.conf:ro
    ports: !override
      - "{LOOPBACK}:{ports["nginx"]}:8080"
{LIMITS}  prometheus:
    image: {images["prometheus"]}
    command: ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
    ports: !override
      - "{LOOPBACK}:{ports["prometheus"]}:9090"
{LIMITS}"""


class Compose:
    """podman-compose on docker/compose.yml plus the override, as one project."""

    def __init__(self, override_path: Path) -> None:
        self.project = f"leaderboard-ct-{secrets.token_hex(3)}"
        self.override_path = override_path

    def __call__(
        self, *args: str, timeout: float = 300, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run one podman-compose command; fail with its output (unless not `check`)."""
        command = [sys.executable, "-m", "podman_compose", "-p", self.project]
        command += ["-f", str(COMPOSE_FILE), "-f", str(self.override_path), *args]
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=os.environ | {"LEADERBOARD_WRITE_TOKEN": TOKEN},
        )
        if check:
            assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        return result


@pytest.fixture(scope="module")
def compose(
    service_image: str, test_images: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Compose, dict[str, int]]]:
    """The compose project, up (Grafana aside)."""
    directory = tmp_path_factory.mktemp("compose")
    ports = {"nginx": free_port(), "prometheus": free_port()}
    path = directory / "compose.override.yml"
    path.write_text(override(directory, test_images, service_image, ports))
    project = Compose(path)
    try:
        project("up", "--detach", "--no-build", *SERVICES)
        yield project, ports
    finally:
        project("down", "--volumes", "--timeout", "0", check=False)


async def test_the_compose_stack_serves_through_nginx_and_is_scraped(
    compose: tuple[Compose, dict[str, int]],
) -> None:
    _, ports = compose
    nginx = f"http://{LOOPBACK}:{ports['nginx']}"
    await asyncio.to_thread(wait_http, f"{nginx}/readyz", 240)
    async with httpx.AsyncClient(base_url=nginx, timeout=30) as client:
        gql = GraphQLHttp(client, token=TOKEN)
        await gql.data(INCREMENT, {"username": "composed", "delta": 7})
        # Several reads: nginx sends them to both instances, which agree.
        for _ in range(4):
            standing = await gql.data(PLAYER, {"username": "composed"})
            assert standing["player"]["score"] == 7

    prometheus = f"http://{LOOPBACK}:{ports['prometheus']}"
    async with httpx.AsyncClient(base_url=prometheus, timeout=10) as client:
        deadline = time.monotonic() + 60
        while True:
            try:
                targets = (await client.get("/api/v1/targets")).json()["data"]["activeTargets"]
            except httpx.TransportError:
                targets = []
            health = {t["labels"]["instance"]: t["health"] for t in targets}
            if all(health.get(f"{name}:8000") == "up" for name in INSTANCES):
                break
            assert time.monotonic() < deadline, health
            await asyncio.sleep(1)


def test_compose_stops_the_instances_within_their_grace_period(
    compose: tuple[Compose, dict[str, int]],
) -> None:
    project, _ = compose
    grace = seconds(
        __import__("yaml").safe_load(COMPOSE_FILE.read_text())["x-leaderboard"]["stop_grace_period"]
    )
    started = time.monotonic()
    project("stop", *INSTANCES, timeout=grace * 3)
    stopped = time.monotonic() - started
    FIGURES["podman-compose stop of both instances"] = f"{stopped:.1f} s (grace {grace:.0f} s)"
    # Both instances in turn, each within its grace period (SIGKILL would end it there).
    assert stopped < 2 * grace
    for name in INSTANCES:
        container = f"{project.project}_{name}_1"
        exit_code = podman("inspect", container, "--format", "{{.State.ExitCode}}")
        # 0: the instance drained and exited by itself; 137 would be the SIGKILL.
        assert exit_code.stdout.strip() == "0", container
