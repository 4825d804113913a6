"""docker/: the compose file is valid Compose and keeps its structural promises."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.nginx import LISTEN_PORT, TEMPLATE_PATH, UPSTREAM_SERVERS, render_template

pytestmark = pytest.mark.unit

DOCKER = Path(__file__).resolve().parents[1] / "docker"
COMPOSE_PATH = DOCKER / "compose.yml"
DOCKERFILE_PATH = DOCKER / "Dockerfile"
INSTANCES = ("leaderboard-1", "leaderboard-2")
SERVICE_PORT = 8000

Json = dict[str, Any]


def load_yaml(path: Path) -> Json:
    document: Json = yaml.safe_load(path.read_text())
    return document


@pytest.fixture(scope="module")
def compose() -> Json:
    return load_yaml(COMPOSE_PATH)


@pytest.fixture(scope="module")
def services(compose: Json) -> dict[str, Json]:
    found: dict[str, Json] = compose["services"]
    return found


def bind_mounts(service: Json) -> dict[str, Path]:
    """Container path -> host path of a service's bind mounts (short syntax)."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target, *_ = volume.split(":")
        if source.startswith("."):
            mounts[target] = (COMPOSE_PATH.parent / source).resolve()
    return mounts


def check_compose_schema(path: Path) -> subprocess.CompletedProcess[str]:
    # check-jsonschema ships the Compose Specification's schema (vendor.compose-spec): no
    # network needed.
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", path],
        capture_output=True,
        text=True,
        check=False,
    )


def test_compose_file_follows_the_compose_specification() -> None:
    result = check_compose_schema(COMPOSE_PATH)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_specification_check_rejects_a_broken_compose_file(tmp_path: Path) -> None:
    broken = tmp_path / "compose.yml"
    broken.write_text("services:\n  app:\n    image: app\n    healthcheck: yes-please\n")
    assert check_compose_schema(broken).returncode != 0


def test_two_instances_of_the_service_image_share_redis_and_mariadb(
    services: dict[str, Json],
) -> None:
    built = {
        name
        for name, service in services.items()
        if service.get("build", {}).get("dockerfile") == "docker/Dockerfile"
    }
    assert built == set(INSTANCES)
    first, second = (services[name] for name in INSTANCES)
    assert first["image"] == second["image"]
    assert first["environment"] == second["environment"]
    environment = first["environment"]
    assert environment["LEADERBOARD_REDIS_URL"].startswith("redis://redis:")
    assert "@mariadb:3306/" in environment["LEADERBOARD_DATABASE_URL"]
    assert {"redis", "mariadb"} <= set(services)
    for name in INSTANCES:
        # One worker: per-process metrics would make /metrics a different worker each scrape.
        assert services[name]["command"][-2:] == ["--workers", "1"]
        assert set(services[name]["depends_on"]) == {"redis", "mariadb"}


def test_nginx_waits_for_both_instances_and_proxies_to_them(services: dict[str, Json]) -> None:
    nginx = services["nginx"]
    assert nginx["depends_on"] == {name: {"condition": "service_healthy"} for name in INSTANCES}
    upstreams = nginx["environment"][UPSTREAM_SERVERS]
    assert upstreams == " ".join(f"server {name}:{SERVICE_PORT};" for name in INSTANCES)
    listen_port = nginx["environment"][LISTEN_PORT]
    assert nginx["ports"] == [f"{SERVICE_PORT}:{listen_port}"]


def test_compose_renders_the_template_the_tests_render(services: dict[str, Json]) -> None:
    nginx = services["nginx"]
    mounts = bind_mounts(nginx)
    target = "/etc/nginx/templates/leaderboard.conf.template"
    assert mounts[target] == TEMPLATE_PATH
    # What the image's envsubst does: replace ${NAME} for each defined variable the filter
    # lets through. It must give what tests/support/nginx.py renders for the same values.
    environment = nginx["environment"]
    allowed = re.compile(environment["NGINX_ENVSUBST_FILTER"])
    substituted = TEMPLATE_PATH.read_text()
    for name, value in environment.items():
        if allowed.search(name):
            substituted = substituted.replace("${" + name + "}", str(value))
    expected = render_template(
        [f"{name}:{SERVICE_PORT}" for name in INSTANCES], int(environment[LISTEN_PORT])
    )
    assert substituted == expected
    assert not allowed.search("NGINX_ENVSUBST_FILTER")


def dockerfile_instructions() -> Iterator[tuple[str, str]]:
    """(instruction, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE_PATH.read_text())
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            instruction, _, arguments = stripped.partition(" ")
            yield instruction.upper(), arguments.strip()


def test_the_image_runs_unprivileged_and_checks_healthz() -> None:
    instructions = list(dockerfile_instructions())
    final_stage = instructions[max(i for i, (op, _) in enumerate(instructions) if op == "FROM") :]
    # Every stage stems from the BASE_IMAGE build argument, the official slim image unless
    # a build says otherwise (`make image` without a registry: a local Debian base).
    assert instructions[0] == ("ARG", "BASE_IMAGE=python:3.11-slim-bookworm")
    bases = [arguments.split()[0] for op, arguments in instructions if op == "FROM"]
    assert bases == ["${BASE_IMAGE}", "base", "base"], bases
    users = [arguments for op, arguments in final_stage if op == "USER"]
    assert users, "the image runs as root"
    assert users[-1] not in ("root", "0"), users
    (healthcheck,) = [arguments for op, arguments in final_stage if op == "HEALTHCHECK"]
    assert f"http://127.0.0.1:{SERVICE_PORT}/healthz" in healthcheck
    assert "curl" not in healthcheck
    assert ("EXPOSE", str(SERVICE_PORT)) in final_stage
    # The CA bundle a build may hand to pip is a build secret of the build stage only.
    assert not [arguments for _, arguments in final_stage if "pip-ca" in arguments]


def test_every_service_has_a_healthcheck(services: dict[str, Json]) -> None:
    image_checks = any(op == "HEALTHCHECK" for op, _ in dockerfile_instructions())
    for name, service in services.items():
        healthcheck = service.get("healthcheck")
        if healthcheck is None:
            # The instances inherit the image's HEALTHCHECK.
            assert name in INSTANCES, f"{name} has no healthcheck"
            assert image_checks, "the image has no HEALTHCHECK"
        else:
            assert not healthcheck.get("disable", False), name
            assert healthcheck["test"][0] in ("CMD", "CMD-SHELL"), name
    # So every `condition: service_healthy` has a healthcheck to wait for.


def test_prometheus_scrapes_both_instances(services: dict[str, Json]) -> None:
    mounts = bind_mounts(services["prometheus"])
    config_path = mounts["/etc/prometheus/prometheus.yml"]
    assert config_path == DOCKER / "prometheus" / "prometheus.yml"
    config = load_yaml(config_path)
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == "leaderboard"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    targets = {target for group in job["static_configs"] for target in group["targets"]}
    assert targets == {f"{name}:{SERVICE_PORT}" for name in INSTANCES}


def test_grafana_is_provisioned_with_prometheus_and_the_dashboards(
    services: dict[str, Json],
) -> None:
    grafana = services["grafana"]
    mounts = bind_mounts(grafana)
    provisioning = mounts["/etc/grafana/provisioning"]
    assert provisioning == DOCKER / "grafana" / "provisioning"

    (datasource,) = load_yaml(provisioning / "datasources" / "prometheus.yml")["datasources"]
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"
    assert "9090:9090" in services["prometheus"]["ports"]

    (provider,) = load_yaml(provisioning / "dashboards" / "leaderboard.yml")["providers"]
    dashboards_in_container = provider["options"]["path"]
    dashboards = mounts[dashboards_in_container]
    assert dashboards == DOCKER / "grafana" / "dashboards"
    dashboard_files = sorted(dashboards.glob("*.json"))
    assert [path.name for path in dashboard_files] == ["leaderboard.json"]

    # Panels must name the provisioned data source (or a dashboard variable).
    uids = {
        value["uid"]
        for value in _objects(json.loads(dashboard_files[0].read_text()))
        if isinstance(value.get("uid"), str) and value.get("type") == "prometheus"
    }
    assert uids <= {datasource["uid"]} | {uid for uid in uids if uid.startswith("$")}, uids


def _objects(value: object) -> Iterator[Json]:
    """Every JSON object nested in a document."""
    if isinstance(value, dict):
        yield value
        for item in value.values():
            yield from _objects(item)
    elif isinstance(value, list):
        for item in value:
            yield from _objects(item)
