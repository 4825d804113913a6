"""A private nginx in front of test instances, configured from docker/nginx's template.

The template is what compose runs (rendered there by the nginx image's envsubst); here the
same two placeholders are filled in and the result is wrapped in a complete nginx.conf for
a foreground nginx whose pid file, logs and temporary files live in a private directory:

    async with NginxProxy(["127.0.0.1:8001", "127.0.0.1:8002"]) as proxy:
        httpx.get(f"{proxy.url}/healthz")
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Sequence
from pathlib import Path

from tests.support.private_servers import _PrivateServer

NGINX = os.environ.get("LEADERBOARD_TEST_NGINX", "/usr/sbin/nginx")
TEMPLATE_PATH = (
    Path(__file__).resolve().parents[2] / "docker" / "nginx" / "leaderboard.conf.template"
)

LISTEN_PORT = "LEADERBOARD_NGINX_LISTEN_PORT"
UPSTREAM_SERVERS = "LEADERBOARD_NGINX_UPSTREAM_SERVERS"

_PLACEHOLDER = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}")
_TEMPORARY_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def upstream_servers(upstreams: Sequence[str]) -> str:
    """The upstream placeholder's value: one `server host:port;` per instance."""
    if not upstreams:
        raise ValueError("nginx needs at least one upstream")
    return " ".join(f"server {upstream};" for upstream in upstreams)


def render_template(upstreams: Sequence[str], listen_port: int, template: str | None = None) -> str:
    """The template with its placeholders filled in, as envsubst in the nginx image does."""
    text = TEMPLATE_PATH.read_text() if template is None else template
    values = {LISTEN_PORT: str(listen_port), UPSTREAM_SERVERS: upstream_servers(upstreams)}
    for name, value in values.items():
        placeholder = "${" + name + "}"
        if placeholder not in text:
            raise ValueError(f"the nginx template has no {placeholder}")
        text = text.replace(placeholder, value)
    left = _PLACEHOLDER.findall(text)
    if left:
        raise ValueError(f"the nginx template has placeholders nobody fills in: {left}")
    return text


def render_config(
    upstreams: Sequence[str], listen_port: int, directory: Path, error_log: Path
) -> str:
    """A complete nginx.conf around the rendered template; every path in `directory`."""
    (directory / "leaderboard.conf").write_text(render_template(upstreams, listen_port))
    temporary_paths = "\n".join(
        f"    {name}_temp_path {directory / name};" for name in _TEMPORARY_PATHS
    )
    # As root, nginx would hand its workers to `nobody`, who cannot enter a private 0700
    # directory: keep them as root (only ever the case in a throw-away test container).
    user = "user root root;\n" if os.geteuid() == 0 else ""
    return (
        "daemon off;\n"
        "worker_processes 1;\n"
        f"{user}"
        f"pid {directory / 'nginx.pid'};\n"
        f"lock_file {directory / 'nginx.lock'};\n"
        f"error_log {error_log} notice;\n"
        # Room for more than the template's per-address `limit_conn`, each held request
        # with its upstream connection (tests/server/test_rate_limits_behind_nginx.py).
        "events {\n    worker_connections 2048;\n}\n"
        "http {\n"
        f"    access_log {directory / 'access.log'};\n"
        f"{temporary_paths}\n"
        f"    include {directory / 'leaderboard.conf'};\n"
        "}\n"
    )


class NginxProxy(_PrivateServer):
    """A foreground nginx proxying to `upstreams` (each `host:port`) on a free port."""

    name = "nginx"
    # Workers outlive a killed master: the whole process group goes.
    own_process_group = True

    def __init__(self, upstreams: Sequence[str]) -> None:
        super().__init__()
        self.upstreams = list(upstreams)

    @property
    def url(self) -> str:
        """The proxy's base URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def config_path(self) -> Path:
        """The nginx.conf the process runs with."""
        return self.directory / "nginx.conf"

    async def _prepare(self) -> None:
        self.config_path.write_text(
            render_config(self.upstreams, self.port, self.directory, self.log_path)
        )

    def _command(self) -> list[str]:
        return [NGINX, "-c", str(self.config_path), "-p", str(self.directory)]

    async def _answers(self) -> bool:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError:
            return False
        writer.close()
        await writer.wait_closed()
        return True
