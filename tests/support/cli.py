"""The `leaderboard` command run as a user runs it, and a document its tests send."""

from __future__ import annotations

import asyncio
import os

from tests.support.service_process import LEADERBOARD

INCREMENTS = """
mutation($increments: [ScoreIncrement!]!) { incrementScores(increments: $increments) { score } }
"""


async def leaderboard(environment: dict[str, str], *arguments: str) -> tuple[int, str]:
    """Run the command; its exit code and everything it printed."""
    clean = {key: value for key, value in os.environ.items() if not key.startswith("LEADERBOARD_")}
    process = await asyncio.create_subprocess_exec(
        str(LEADERBOARD),
        *arguments,
        env=clean | environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    return await process.wait(), output.decode()
