"""The provisioned Grafana dashboard cannot drift from the metrics the service exports."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server.metrics import Metrics

pytestmark = pytest.mark.unit

DASHBOARD = Path(__file__).parents[1] / "docker" / "grafana" / "dashboards" / "leaderboard.json"
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}

# The samples a metric family of each type exposes (prometheus_client names them so).
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
    "unknown": ("",),
}
# PromQL words that look like metric names.
KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool"}
    | {"offset", "inf", "nan"}
)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"(?<![\w$.])([A-Za-z_:][\w:]*)\b(?!\s*\()")


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    """The dashboard JSON."""
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def all_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel, those inside (collapsed) rows included."""
    for panel in panels:
        yield panel
        yield from all_panels(panel.get("panels", []))


def expressions(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(panel title, PromQL expression) of every query of the dashboard."""
    for panel in all_panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            yield f"${variable['name']}", variable["query"]["query"]


def metric_names(expression: str) -> set[str]:
    """The metric names a PromQL expression reads (labels, functions, strings left out)."""
    expression = expression.replace("$__rate_interval", "5m")
    for pattern in (_STRING, _MATCHERS, _RANGE, _GROUPING):
        expression = pattern.sub(" ", expression)
    # label_values(metric, label): the label is not a metric.
    expression = re.sub(r"label_values\(\s*([\w:]+)\s*,\s*\w+\s*\)", r"\1", expression)
    return {name for name in _IDENTIFIER.findall(expression) if name.lower() not in KEYWORDS}


def exported_families() -> dict[str, str]:
    """Every metric family `Metrics()` registers: name -> type."""
    return {family.name: family.type for family in Metrics().registry.collect()}


def exported_samples() -> set[str]:
    """Every sample name `Metrics()` can export, observed yet or not."""
    return {
        family + suffix for family, kind in exported_families().items() for suffix in SUFFIXES[kind]
    }


def test_the_parser_finds_metric_names_only() -> None:
    expression = (
        "histogram_quantile(0.99, sum by (le, field) (rate(leaderboard_graphql_operation_seconds_"
        'bucket{instance=~"$instance", code!="OK"}[$__rate_interval]))) / on (instance) '
        "process_max_fds"
    )
    assert metric_names(expression) == {
        "leaderboard_graphql_operation_seconds_bucket",
        "process_max_fds",
    }


def test_every_metric_a_panel_reads_is_exported(dashboard: dict[str, Any]) -> None:
    exported = exported_samples()
    used = 0
    for title, expression in expressions(dashboard):
        names = metric_names(expression)
        assert names, f"{title}: no metric in {expression!r}"
        unknown = names - exported
        assert not unknown, f"{title}: {sorted(unknown)} not exported by Metrics()"
        used += len(names)
    assert used > 30


def test_every_service_metric_has_a_panel(dashboard: dict[str, Any]) -> None:
    used = {name for _, expression in expressions(dashboard) for name in metric_names(expression)}
    for family, kind in exported_families().items():
        if family.startswith("leaderboard_"):
            samples = {family + suffix for suffix in SUFFIXES[kind]}
            assert samples & used, f"no panel shows {family}"


def test_every_query_uses_the_provisioned_datasource(dashboard: dict[str, Any]) -> None:
    for panel in all_panels(dashboard["panels"]):
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == DATASOURCE, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]
    for variable in dashboard["templating"]["list"]:
        assert variable["datasource"] == DATASOURCE, variable["name"]


def test_every_query_is_scoped_to_the_chosen_instances(dashboard: dict[str, Any]) -> None:
    for title, expression in expressions(dashboard):
        if not title.startswith("$"):
            selectors = re.findall(r"\{[^}]*\}", expression)
            assert selectors, f"{title}: {expression}"
            assert all('instance=~"$instance"' in selector for selector in selectors), title


def test_the_layout_is_sound(dashboard: dict[str, Any]) -> None:
    assert dashboard["uid"] == "leaderboard"
    assert dashboard["id"] is None  # provisioned: Grafana assigns the id
    panels = list(all_panels(dashboard["panels"]))
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    cells: dict[tuple[int, int], str] = {}
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for cell in itertools.product(
            range(grid["x"], grid["x"] + grid["w"]), range(grid["y"], grid["y"] + grid["h"])
        ):
            assert cell not in cells, f"{panel['title']} overlaps {cells[cell]}"
            cells[cell] = panel["title"]
        if panel["type"] != "row":
            assert panel.get("description"), panel["title"]
            assert panel["fieldConfig"]["defaults"].get("unit"), panel["title"]
