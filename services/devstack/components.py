"""The linkpulse processes of the stack (`linkpulse serve X`) and how to tell they are ready."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

from services.config import Settings
from services.devstack.endpoints import Endpoint, from_addr
from services.devstack.probes import Probe, http_probe, tcp_probe
from services.devstack.processes import ProcessSpec
from services.protos import SERVICES

# Start order: the gRPC services, the worker, the ingestion flusher, then the gateway.
COMPONENTS = (*SERVICES, "worker", "flusher", "gateway")
HEALTH_PATH = "/healthz"


def gateway_endpoint(settings: Settings) -> Endpoint:
    """Where the HTTP gateway listens."""
    return Endpoint(settings.gateway_host, settings.gateway_port)


def gateway_url(settings: Settings) -> str:
    """Base URL of the gateway as a client reaches it."""
    endpoint = gateway_endpoint(settings)
    host = endpoint.connect_host
    return f"http://[{host}]:{endpoint.port}" if ":" in host else f"http://{host}:{endpoint.port}"


def endpoint_of(settings: Settings, name: str) -> Endpoint | None:
    """Listening endpoint of a component (None for the worker and flusher: they listen nowhere)."""
    if name in SERVICES:
        return from_addr(settings.grpc_addr(name))
    if name == "gateway":
        return gateway_endpoint(settings)
    return None


def probe(settings: Settings, name: str) -> Probe | None:
    """How to tell a component is ready (None for those that listen nowhere)."""
    endpoint = endpoint_of(settings, name)
    if endpoint is None:
        return None
    if name == "gateway":
        return http_probe(endpoint, HEALTH_PATH)
    return tcp_probe(endpoint)


def serve_spec(
    settings: Settings,
    component: str,
    label: str,
    ready: Probe | None,
    env: dict[str, str] | None = None,
    ready_timeout: float = 60.0,
) -> ProcessSpec:
    """How to run `linkpulse serve <component>` in the background as process `label` (its pid
    file and log are named after the label, so several copies of a component can run)."""
    argv = (sys.executable, "-m", "services.cli.main", "serve", component)
    return ProcessSpec(
        name=label,
        argv=argv,
        pid_path=settings.run_dir / "pids" / f"{label}.pid",
        log_path=settings.run_dir / "logs" / f"{label}.log",
        ready=ready,
        marker=f"services.cli.main serve {component}",
        env={"PYTHONUNBUFFERED": "1", **(env or {})},
        ready_timeout=ready_timeout,
        settle_seconds=3.0,
        stop_grace=15.0,
    )


def spec(settings: Settings, name: str, ready_timeout: float = 60.0) -> ProcessSpec:
    """How to run `linkpulse serve <name>` in the background."""
    return serve_spec(settings, name, name, probe(settings, name), ready_timeout=ready_timeout)


def specs(settings: Settings, ready_timeout: float = 60.0) -> list[ProcessSpec]:
    """Specs of every component in start order."""
    return [spec(settings, name, ready_timeout) for name in COMPONENTS]


def supervisor_state_path(settings: Settings, name: str) -> Path:
    """Where the supervisor of a component keeps its child's pid and restart count."""
    return settings.run_dir / "supervise" / f"{name}.json"


def supervised(settings: Settings, child: ProcessSpec) -> ProcessSpec:
    """child under a supervisor that restarts it whenever it exits; the pid file names the
    supervisor (stopping it stops both)."""
    state = supervisor_state_path(settings, child.name)
    argv = (sys.executable, "-m", "services.devstack.supervisor", "--state", str(state), "--")
    return replace(child, argv=(*argv, *child.argv))


def supervised_spec(settings: Settings, name: str, ready_timeout: float = 60.0) -> ProcessSpec:
    """`linkpulse serve <name>` under a supervisor that restarts it whenever it exits."""
    return supervised(settings, spec(settings, name, ready_timeout))


def supervised_specs(settings: Settings, ready_timeout: float = 60.0) -> list[ProcessSpec]:
    """Supervised specs of every component in start order."""
    return [supervised_spec(settings, name, ready_timeout) for name in COMPONENTS]
