"""The container test (`make container-test`): images built and run with podman.

Collected only when LEADERBOARD_CONTAINER_TEST=1 (the make target sets it): it builds
images and takes minutes, so the default `make test` run leaves it out.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.podman import FIGURES, ROOT, podman

if os.environ.get("LEADERBOARD_CONTAINER_TEST") != "1":
    collect_ignore_glob = ["test_*.py"]

LOCAL_BASE = os.environ.get("LOCAL_BASE", "localhost/leaderboard-base:bookworm")
SERVICE_IMAGE = "localhost/leaderboard:container-test"
TEST_SERVICES = ("redis", "mariadb", "nginx", "prometheus")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the figures the run measured."""
    if FIGURES:
        terminalreporter.section("container figures")
        for name, value in FIGURES.items():
            terminalreporter.write_line(f"{name}: {value}")


@pytest.fixture(scope="session")
def service_image(tmp_path_factory: pytest.TempPathFactory) -> str:
    """leaderboard image built by `make image`'s script from a clean clone of HEAD."""
    clone = tmp_path_factory.mktemp("clone") / "leaderboard"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    started = time.monotonic()
    result = subprocess.run(
        [str(clone / "docker" / "build-image.sh")],
        env=os.environ | {"IMAGE": SERVICE_IMAGE, "LOCAL_BASE": LOCAL_BASE},
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    FIGURES["service image build"] = f"{time.monotonic() - started:.0f} s"
    size = int(podman("image", "inspect", SERVICE_IMAGE, "--format", "{{.Size}}").stdout)
    base = next(line for line in result.stderr.splitlines() if " build from " in line)
    FIGURES["service image size"] = f"{size / 1e6:.0f} MB ({base.removeprefix('== ')})"
    return SERVICE_IMAGE


@pytest.fixture(scope="session")
def test_images(service_image: str) -> dict[str, str]:
    """The stack's other services from Debian packages (tests/containers/Containerfile)."""
    base = LOCAL_BASE if podman("image", "exists", LOCAL_BASE, check=False).returncode == 0 else ""
    images = {}
    started = time.monotonic()
    for service in TEST_SERVICES:
        image = f"localhost/leaderboard-test-{service}:local"
        args = ["build", "--format", "docker", "--isolation=chroot", "--network", "host"]
        if base:
            args += ["--build-arg", f"BASE_IMAGE={base}"]
        podman(*args, "--target", service, "-t", image, str(Path(__file__).parent), timeout=1800)
        images[service] = image
    FIGURES["test images build"] = f"{time.monotonic() - started:.0f} s"
    return images
