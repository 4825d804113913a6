"""The service image alone: unprivileged, healthy once ready, its CLI works."""

from __future__ import annotations

import pytest

from tests.support.podman import FIGURES, RUN_OPTIONS, Stack, podman, wait_healthy

pytestmark = pytest.mark.integration


def test_the_cli_answers_help(service_image: str) -> None:
    result = podman("run", "--rm", *RUN_OPTIONS, service_image, "--help")
    assert "usage: leaderboard" in result.stdout


def test_the_service_runs_as_an_unprivileged_user(service_image: str) -> None:
    configured = podman("image", "inspect", service_image, "--format", "{{.Config.User}}")
    assert configured.stdout.strip() == "leaderboard"
    result = podman("run", "--rm", *RUN_OPTIONS, "--entrypoint", "id", service_image, "-u")
    assert int(result.stdout) != 0


def test_the_healthcheck_passes_once_the_service_is_ready(service_image: str) -> None:
    stack = Stack()
    try:
        # The embedded default: no Redis or MySQL needed to answer /healthz.
        container = stack.run("leaderboard", service_image)
        # Before the server listens, the image's check fails (not a check that always passes).
        assert podman("healthcheck", "run", container, check=False).returncode != 0
        seconds = wait_healthy(container, timeout=120)
        FIGURES["start-up to healthy (embedded)"] = f"{seconds:.1f} s"
        state = podman("inspect", container, "--format", "{{.State.Health.Status}}")
        assert state.stdout.strip() == "healthy"
    finally:
        stack.remove()
