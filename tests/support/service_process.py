"""Real `leaderboard serve` processes for end-to-end tests."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

LEADERBOARD = Path(sys.executable).with_name("leaderboard")


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class ServiceProcess:
    """One `leaderboard serve` process with its own environment and log file."""

    def __init__(self, environment: dict[str, str], log_path: Path, *, workers: int = 1) -> None:
        self.environment = environment
        self.log_path = log_path
        self.workers = workers
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The service's base URL."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self, timeout: float = 60.0) -> None:
        """Start the process and wait until /readyz answers 200."""
        environment = {
            key: value for key, value in os.environ.items() if not key.startswith("LEADERBOARD_")
        }
        environment |= self.environment
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    str(LEADERBOARD),
                    "serve",
                    "--port",
                    str(self.port),
                    "--workers",
                    str(self.workers),
                ],
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.log_path.parent,
            )
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(base_url=self.url) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"leaderboard serve exited early:\n{self.log()}")
                try:
                    if (await client.get("/readyz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError(f"leaderboard serve did not become ready:\n{self.log()}")

    def log(self) -> str:
        """Everything the process printed."""
        return self.log_path.read_text(errors="replace")

    async def terminate(self, timeout: float = 60.0) -> bool:
        """SIGTERM (a graceful stop that drains); whether the process exited cleanly.

        uvicorn re-raises the signal it caught once its graceful shutdown is done, so a
        clean stop ends with -SIGTERM as well as 0; a crash or a timeout does not.
        """
        code = await self._signal(signal.SIGTERM, timeout)
        return code in (0, -signal.SIGTERM)

    async def kill(self) -> int:
        """SIGKILL: no drain."""
        return await self._signal(signal.SIGKILL, 10.0)

    async def _signal(self, signum: int, timeout: float) -> int:
        process = self.process
        if process is None or process.poll() is not None:
            return process.returncode if process else 0
        process.send_signal(signum)
        deadline = time.monotonic() + timeout
        while process.poll() is None:
            if time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"leaderboard serve did not stop in {timeout} s:\n{self.log()}")
            await asyncio.sleep(0.05)
        return process.returncode

    async def __aenter__(self) -> ServiceProcess:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
