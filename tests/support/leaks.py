"""What a test can check was left open by this process: tasks, and TCP connections to
Redis or MariaDB (read from /proc, so a pool that forgot a connection is seen too)."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from tests.support.shared_services import MYSQL_PORT, REDIS_URL

REDIS_PORT = urlparse(REDIS_URL).port or 6379

_ESTABLISHED = "01"


def connections(ports: frozenset[int] = frozenset({REDIS_PORT, MYSQL_PORT})) -> int:
    """This process's established TCP connections to any of `ports`."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    count = 0
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            if remote_port in ports and fields[3] == _ESTABLISHED and fields[9] in inodes:
                count += 1
    return count


@dataclass(frozen=True)
class OpenThings:
    """Tasks and connections open at one moment."""

    tasks: frozenset[asyncio.Task[object]]
    connections: int


def open_now() -> OpenThings:
    """The tasks (other than the current one) and store connections open now."""
    current = asyncio.current_task()
    tasks = frozenset(task for task in asyncio.all_tasks() if task is not current)
    return OpenThings(tasks, connections())


async def opened_since(before: OpenThings) -> tuple[list[str], int]:
    """Tasks still running and connections still open that `before` did not have."""
    # Let cancelled tasks finish their clean-up first.
    for _ in range(10):
        await asyncio.sleep(0.01)
    now = open_now()
    tasks = sorted(task.get_name() for task in now.tasks - before.tasks if not task.done())
    return tasks, now.connections - before.connections
