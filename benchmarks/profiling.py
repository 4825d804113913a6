"""Sampling profiles of the running service with py-spy (optional: `pip install py-spy`).

`record` attaches `py-spy record --nonblocking --format raw` to the service (and its
workers) for a while; `summarize` turns the collapsed stacks into the functions with the
most own ("self") and total ("inclusive") samples. The raw files open in speedscope
(https://www.speedscope.app, "collapsed stack" format) or flamegraph.pl.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

_FRAME = re.compile(r"^(?P<function>.*?) \((?P<path>[^()]*?)(?::\d+)?\)$")


def py_spy() -> str | None:
    """The py-spy executable (next to the interpreter, or on PATH), or None."""
    beside = Path(sys.executable).with_name("py-spy")
    if beside.exists():
        return str(beside)
    return shutil.which("py-spy")


async def record(pid: int, seconds: float, output: Path, rate: int = 200) -> bool:
    """Sample the process tree for `seconds`; whether a profile was written."""
    executable = py_spy()
    if executable is None:
        return False
    output.parent.mkdir(parents=True, exist_ok=True)
    process = await asyncio.create_subprocess_exec(
        executable,
        "record",
        "--pid",
        str(pid),
        "--subprocesses",
        "--nonblocking",
        "--rate",
        str(rate),
        "--duration",
        str(max(1, round(seconds))),
        "--format",
        "raw",
        "--output",
        str(output),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _, error = await process.communicate()
    except BaseException:
        if process.returncode is None:
            process.kill()
            await process.wait()
        raise
    if process.returncode != 0 or not await asyncio.to_thread(output.exists):
        print(f"  py-spy failed: {error.decode(errors='replace')[-300:]}", flush=True)
        return False
    return True


def _short(frame: str) -> str:
    match = _FRAME.match(frame)
    if match is None:
        return frame
    path = match["path"].split("site-packages/")[-1].split("/work/main/")[-1]
    path = path.split("/lib/python3")[-1] if "/lib/python3" in path else path
    return f"{match['function']} ({path})"


def summarize(raw: Path, top: int = 20) -> dict[str, Any]:
    """Self and inclusive sample shares of the hottest functions (percent of all samples)."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        total += samples
        frames = [_short(frame) for frame in stack.split(";")[1:]]  # [0] is the process
        if not frames:
            continue
        own[frames[-1]] += samples
        for frame in set(frames):
            inclusive[frame] += samples
    if total == 0:
        return {"samples": 0, "self": [], "inclusive": []}
    return {
        "samples": total,
        "self": [(name, 100 * count / total) for name, count in own.most_common(top)],
        "inclusive": [
            (name, 100 * count / total) for name, count in inclusive.most_common(top * 3)
        ],
    }
