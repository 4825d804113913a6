"""Real-browser test helpers: `leaderboard serve` processes for a page, screenshot paths."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.support.overlay_scene import BOARDS, TOKEN
from tests.support.service_process import ServiceProcess


class Services:
    """`leaderboard serve` processes on the embedded store, sharing one data directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.processes: list[ServiceProcess] = []

    async def start(self, *, port: int | None = None, **environment: str) -> ServiceProcess:
        """Start one (on `port`, e.g. to replace a stopped one) and wait until it is ready."""
        process = ServiceProcess(
            {"LEADERBOARD_WRITE_TOKEN": TOKEN, "LEADERBOARD_BOARDS": BOARDS, **environment},
            self.directory / f"service-{len(self.processes)}.log",
        )
        if port is not None:
            process.port = port
        self.processes.append(process)
        await process.start()
        return process

    async def close(self) -> None:
        """Kill every process still running."""
        for process in self.processes:
            await process.__aexit__(None, None, None)


ScreenshotPath = Callable[[str], Path]
