"""Containers for the container test: podman with the settings that work on this machine.

`podman run` needs runc and explicit lower limits here (crun, or runc with podman's default
limits, cannot set them in this sandbox). Containers talk to each other on a private podman
network by the compose file's service names; the tests reach them only through ports
published on 127.0.0.1.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

PODMAN = os.environ.get("LEADERBOARD_TEST_PODMAN", "podman")
RUN_OPTIONS = ("--runtime", "runc", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024")
LOOPBACK = "127.0.0.1"


def podman(
    *args: str, check: bool = True, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    """Run one podman command; its output is returned (and shown when it fails)."""
    result = subprocess.run(
        [PODMAN, *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)}: {result.returncode}\n{result.stderr}")
    return result


def free_port() -> int:
    """A TCP port nobody listens on at the moment, on loopback."""
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Stack:
    """Containers on one private network, removed together."""

    network: str = field(default_factory=lambda: f"leaderboard-test-{secrets.token_hex(4)}")
    containers: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        podman("network", "create", self.network)

    def run(
        self,
        name: str,
        image: str,
        *command: str,
        environment: Mapping[str, str] | None = None,
        ports: Mapping[int, int] | None = None,
        volumes: Sequence[str] = (),
        options: Sequence[str] = (),
    ) -> str:
        """Start a detached container named `name` (its host name on the network);
        `ports` maps host ports on 127.0.0.1 to container ports."""
        container = f"{self.network}-{name}"
        args = ["run", "--detach", "--name", container, "--network", self.network]
        args += ["--network-alias", name, *RUN_OPTIONS, *options]
        for key, value in (environment or {}).items():
            args += ["--env", f"{key}={value}"]
        for host_port, container_port in (ports or {}).items():
            args += ["--publish", f"{LOOPBACK}:{host_port}:{container_port}"]
        for volume in volumes:
            args += ["--volume", volume]
        podman(*args, image, *command)
        self.containers.append(container)
        return container

    def remove(self) -> None:
        """Remove every container and the network."""
        for container in reversed(self.containers):
            podman("rm", "--force", "--time", "0", container, check=False)
        podman("network", "rm", "--force", self.network, check=False)


def wait_healthy(container: str, timeout: float) -> float:
    """Run the container's HEALTHCHECK until it passes; the seconds it took.

    podman schedules healthchecks with systemd timers, which this machine does not have, so
    the test runs the image's check command itself, as the timer would.
    """
    started = time.monotonic()
    while True:
        if podman("healthcheck", "run", container, check=False).returncode == 0:
            return time.monotonic() - started
        state = podman("inspect", container, "--format", "{{.State.Status}}").stdout.strip()
        if state != "running":
            logs = podman("logs", container, check=False)
            raise AssertionError(f"{container} is {state}:\n{logs.stdout}{logs.stderr}")
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{container} not healthy within {timeout} s")
        time.sleep(0.5)


def wait_command(container: str, command: Sequence[str], timeout: float) -> None:
    """Run `command` in the container until it succeeds."""
    deadline = time.monotonic() + timeout
    while podman("exec", container, *command, check=False).returncode != 0:
        if time.monotonic() > deadline:
            raise AssertionError(f"{container}: {' '.join(command)} failed for {timeout} s")
        time.sleep(0.5)


INSTANCES = ("leaderboard-1", "leaderboard-2")


TOKEN = "container-test-token"


DATABASE_INIT = """
CREATE DATABASE IF NOT EXISTS leaderboard;
CREATE USER IF NOT EXISTS 'leaderboard'@'%' IDENTIFIED BY 'leaderboard';
GRANT ALL ON leaderboard.* TO 'leaderboard'@'%';
"""


def seconds(duration: str) -> float:
    """A compose duration such as 40s or 1m30s, in seconds."""
    units = {"h": 3600, "m": 60, "s": 1}
    parts = re.findall(r"(\d+)([hms])", duration)
    assert parts, duration
    assert "".join(n + u for n, u in parts) == duration, duration
    return float(sum(int(number) * units[unit] for number, unit in parts))


def wait_http(url: str, timeout: float) -> None:
    """Poll a URL until it answers 200."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=3).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} did not answer 200 within {timeout} s")
        time.sleep(0.5)


ROOT = Path(__file__).resolve().parents[2]

# Measured figures, printed at the end of the run (docs/containers.md quotes them).
FIGURES: dict[str, str] = {}
