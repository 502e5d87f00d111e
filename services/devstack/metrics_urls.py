"""Where each process of the dev stack serves its Prometheus metrics."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.config import Settings
from services.devstack import components
from services.devstack.endpoints import Endpoint

METRICS_PATH = "/metrics"
# Set on a copy of a component so that each copy has a metrics port of its own.
PORT_VARIABLE = "METRICS_PORT"


def url(settings: Settings, component: str, port: int | None = None) -> str | None:
    """The metrics URL of a process of component (on port when given); None when it serves
    none (its port is 0)."""
    if component == "gateway":
        return components.gateway_url(settings) + METRICS_PATH
    port = settings.metrics_port(component) if port is None else port
    if port <= 0:
        return None
    host = Endpoint(settings.metrics_host, port).connect_host
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{port}{METRICS_PATH}"


def of_components(settings: Settings) -> dict[str, str | None]:
    """The metrics URL of each process of the single stack, by process name."""
    return {name: url(settings, name) for name in components.COMPONENTS}


def copy_port(settings: Settings, component: str, index: int, step: int) -> int:
    """The metrics port of copy index (1-based) of component: the component's port, step more
    per copy (0 stays 0: none)."""
    base = settings.metrics_port(component)
    return base + (index - 1) * step if base > 0 else 0


def listed(processes: list[dict[str, Any]], urls: Mapping[str, str | None]) -> list[dict[str, Any]]:
    """The processes' status dicts, each with its "metrics" URL (by process name)."""
    return [{**p, "metrics": urls.get(str(p.get("name")))} for p in processes]
