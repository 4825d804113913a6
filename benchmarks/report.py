"""The results: one table (printed, and in Markdown for docs/performance.md), JSON, HTML."""

from __future__ import annotations

import contextlib
import html
import math
import os
import platform
import subprocess
from dataclasses import asdict
from pathlib import Path
from typing import Any

import orjson

from benchmarks.bench import Row

HEADERS = (
    "Scenario",
    "Measured",
    "Throughput / value",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "Baseline (same run)",
    "Ratio",
    "Server CPU ms/req (baseline)",
    "Target",
    "Result",
)


def _number(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:,.{digits}f}"


def _cpu(row: Row) -> str:
    if row.cpu_ms is None:
        return "—"
    if row.baseline_cpu_ms is None:
        return f"{row.cpu_ms:.2f}"
    return f"{row.cpu_ms:.2f} ({row.baseline_cpu_ms:.2f})"


def cells(row: Row) -> list[str]:
    """The table cells of a row, as text."""
    if row.value:
        amount = row.value
    elif row.throughput is not None:
        amount = f"{row.throughput:,.0f} {row.unit}".strip()
    else:
        amount = "—"
    result = {True: "PASS", False: "FAIL", None: "—"}[row.passed]
    return [
        row.scenario,
        row.measured,
        amount,
        _number(row.p50_ms),
        _number(row.p95_ms),
        _number(row.p99_ms),
        row.baseline or "—",
        f"{row.ratio:.2f}x" if row.ratio is not None else "—",
        _cpu(row),
        row.target or "—",
        result,
    ]


def markdown_table(rows: list[Row]) -> str:
    """The table in Markdown (also readable as plain text)."""
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(cells(row)).replace("\n", " ") + " |" for row in rows]
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    """Where the run happened."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        first = Path("/proc/meminfo").read_text().splitlines()[0]
        memory = f"{int(first.split()[1]) / 1024 / 1024:.1f} GiB"
    except (OSError, IndexError, ValueError):
        pass
    commit = ""
    with contextlib.suppress(OSError):
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
            cwd=Path(__file__).parent,
        ).stdout.strip()
    dirty = ""
    with contextlib.suppress(OSError):
        status = subprocess.run(
            [
                "git",
                "status",
                "--porcelain",
                "--",
                "server",
                "schema",
                "resolvers",
                "store",
                "batcher",
            ],
            capture_output=True,
            text=True,
            check=False,
            cwd=Path(__file__).resolve().parent.parent,  # paths are relative to the root
        ).stdout
        dirty = " ".join(line[3:] for line in status.splitlines()) or "none"
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory": memory,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "commit": commit,
        "uncommitted service files": dirty,
    }


def write_json(path: Path, report: dict[str, Any], rows: list[Row]) -> None:
    """Raw results."""
    payload = report | {"rows": [asdict(row) for row in rows]}
    path.write_bytes(orjson.dumps(payload, option=orjson.OPT_INDENT_2, default=str))


def _svg_line(points: list[tuple[float, float]], width: int = 640, height: int = 160) -> str:
    if len(points) < 2:
        return ""
    xs = [x for x, _ in points]
    ys = [y for _, y in points]
    x0, x1 = min(xs), max(xs) or 1
    y1 = max(ys) * 1.1 or 1
    path = " ".join(
        f"{(x - x0) / ((x1 - x0) or 1) * (width - 50) + 45:.1f},"
        f"{height - 20 - y / y1 * (height - 30):.1f}"
        for x, y in points
    )
    return (
        f'<svg width="{width}" height="{height}" role="img">'
        f'<polyline fill="none" stroke="#2563eb" stroke-width="2" points="{path}"/>'
        f'<text x="0" y="14" font-size="11">{y1:.0f} MiB</text>'
        f'<text x="0" y="{height - 22}" font-size="11">0</text>'
        f'<text x="45" y="{height - 4}" font-size="11">{x0:.0f} s</text>'
        f'<text x="{width - 40}" y="{height - 4}" font-size="11">{x1:.0f} s</text></svg>'
    )


def _pretty(value: object) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2, default=str).decode()


def write_html(path: Path, report: dict[str, Any], rows: list[Row]) -> None:
    """A self-contained HTML report: the table, the run's facts, RSS, profiles, details."""
    escape = html.escape
    header = "".join(f"<th>{escape(name)}</th>" for name in HEADERS)
    body = []
    for row in rows:
        values = cells(row)
        css = {"PASS": "pass", "FAIL": "fail"}.get(values[-1], "")
        body.append(
            "<tr>"
            + "".join(f"<td>{escape(value)}</td>" for value in values[:-1])
            + f'<td class="{css}">{escape(values[-1])}</td></tr>'
        )
    facts = "".join(
        f"<tr><th>{escape(str(key))}</th><td>{escape(str(value))}</td></tr>"
        for key, value in report["run"].items()
    )
    charts = []
    for row in rows:
        samples = row.details.get("samples") if row.measured.startswith("service RSS") else None
        if samples:
            points = [(float(at), rss / 1024 / 1024) for at, rss in samples]
            charts.append(f"<h2>Service RSS during the write stress</h2>{_svg_line(points)}")
    profiles = []
    for name, profile in report.get("profiles", {}).items():
        items = "".join(
            f"<tr><td>{share:.1f} %</td><td><code>{escape(function)}</code></td></tr>"
            for function, share in profile.get("inclusive", [])[:40]
        )
        own = "".join(
            f"<tr><td>{share:.1f} %</td><td><code>{escape(function)}</code></td></tr>"
            for function, share in profile.get("self", [])[:20]
        )
        profiles.append(
            f"<h3>{escape(name)} ({profile.get('samples', 0):,} samples, "
            f"{escape(str(profile.get('file', '')))})</h3>"
            f"<details open><summary>self time</summary><table>{own}</table></details>"
            f"<details><summary>inclusive time</summary><table>{items}</table></details>"
        )
    details = "".join(
        f"<details><summary>{escape(row.scenario)}: {escape(row.measured)}</summary>"
        f"<pre>{escape(_pretty(row.details))}</pre></details>"
        for row in rows
        if row.details and not row.measured.startswith("service RSS")
    )
    document = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>leaderboard benchmark</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #111; }}
table {{ border-collapse: collapse; margin-bottom: 1.5rem; font-size: 0.9rem; }}
th, td {{ border: 1px solid #ccc; padding: 0.3rem 0.5rem; text-align: left; vertical-align: top; }}
td.pass {{ background: #dcfce7; font-weight: bold; }}
td.fail {{ background: #fee2e2; font-weight: bold; }}
pre {{ background: #f6f6f6; padding: 0.5rem; overflow-x: auto; }}
</style></head><body>
<h1>leaderboard benchmark</h1>
<table>{facts}</table>
<h2>Results</h2>
<table><thead><tr>{header}</tr></thead><tbody>{"".join(body)}</tbody></table>
{"".join(charts)}
{"<h2>Profiles (py-spy)</h2>" + "".join(profiles) if profiles else ""}
<h2>Details</h2>{details}
</body></html>
"""
    path.write_text(document, encoding="utf-8")
