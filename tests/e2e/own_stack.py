"""A gateway, the query and export services and a worker of a test's own (its own ports, queue and
environment) over the session's databases; the session's live and audit services serve the rest."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from services.config import Settings
from services.devstack import components, processes
from services.devstack.endpoints import Endpoint, from_addr
from services.devstack.probes import http_probe, tcp_probe
from tests.ports import free_port

OWN_SERVICES = ("query", "export")


@dataclass(frozen=True)
class OwnStack:
    """Where the stack's gateway answers and where each process writes its log."""

    gateway_url: str
    logs: dict[str, Path]


@contextmanager
def own_stack(settings: Settings, label: str, env: dict[str, str]) -> Iterator[OwnStack]:
    """Run query, export, worker and gateway as `<label>-<name>` with env added, until exit."""
    addresses = {service: f"127.0.0.1:{free_port()}" for service in OWN_SERVICES}
    port = free_port()
    common = {
        **env,
        **{f"{service.upper()}_GRPC_ADDR": address for service, address in addresses.items()},
        "GATEWAY_PORT": str(port),
        # Its export jobs go to its own worker only.
        "ARQ_QUEUE": f"{settings.queue_name}:{label}",
        "SNAPSHOT_CACHE": "off",
        "WORKER_CRON": "off",
        "METRICS_PORT": "0",
    }
    specs = [
        *(
            components.serve_spec(
                settings, service, f"{label}-{service}", tcp_probe(from_addr(address)), common
            )
            for service, address in addresses.items()
        ),
        components.serve_spec(settings, "worker", f"{label}-worker", None, common),
        components.serve_spec(
            settings,
            "gateway",
            f"{label}-gateway",
            http_probe(Endpoint("127.0.0.1", port), components.HEALTH_PATH),
            common,
        ),
    ]
    started = []
    try:
        for spec in specs:
            spec.log_path.unlink(missing_ok=True)
            processes.start(spec)
            started.append(spec)
        yield OwnStack(
            f"http://127.0.0.1:{port}",
            {spec.name.removeprefix(f"{label}-"): spec.log_path for spec in specs},
        )
    finally:
        for spec in reversed(started):
            processes.stop(spec)
