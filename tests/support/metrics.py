"""Prometheus metrics read from a running service."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support.service_process import ServiceProcess


def metric_value(text: str, name: str) -> str:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return line.split()[1]
    raise AssertionError(f"metric {name} not exported")


async def metric(instance: ServiceProcess, name: str, **labels: str) -> float:
    """Sum of one metric's samples on one instance (scraped directly, not through nginx)."""
    async with httpx.AsyncClient(base_url=instance.url) as client:
        response = await client.get("/metrics")
    response.raise_for_status()
    return sum(
        sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )
