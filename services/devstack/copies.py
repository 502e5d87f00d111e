"""The processes of `stack up --cluster`: two copies of each gRPC service and of the flusher, one
worker, one gateway, each told where its copy listens and where every copy of a service is."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from services.config import Settings
from services.devstack import components, metrics_urls
from services.devstack.endpoints import Endpoint, from_addr
from services.devstack.probes import Probe, http_probe, tcp_probe
from services.devstack.processes import ProcessSpec
from services.protos import SERVICES

SERVICE_COPIES = 2
FLUSHER_COPIES = 2
# Copy n of a service listens on its configured port + (n - 1) * COPY_PORT_STEP: copy 1 keeps
# the configured address (50051..50054), copy 2 is on 50061..50064.
COPY_PORT_STEP = 10
LISTEN_VARIABLE = "GRPC_LISTEN_ADDR"
ADDR_VARIABLES = {
    "query": "QUERY_GRPC_ADDR",
    "live": "LIVE_GRPC_ADDR",
    "export": "EXPORT_GRPC_ADDR",
    "audit": "AUDIT_GRPC_ADDR",
}


@dataclass(frozen=True)
class Copy:
    """One process of the cluster stack: copy `index` of `component`."""

    component: str
    index: int
    # Where a gRPC service copy listens (GRPC_LISTEN_ADDR); None for the others.
    listen: Endpoint | None = None

    @property
    def name(self) -> str:
        """Process name, pid-file and log name: query-1, flusher-2, gateway-1, ..."""
        return f"{self.component}-{self.index}"


def _first_address(addrs: str) -> Endpoint:
    # The configured address may already be a list (set by a previous cluster stack).
    return from_addr(addrs.split(",")[0].strip())


def service_endpoints(settings: Settings, service: str) -> list[Endpoint]:
    """Where the copies of one gRPC service listen."""
    first = _first_address(settings.grpc_addr(service))
    return [
        Endpoint(first.host, first.port + step * COPY_PORT_STEP) for step in range(SERVICE_COPIES)
    ]


def plan(settings: Settings) -> list[Copy]:
    """Every process in start order: services, worker, flushers, gateway."""
    copies = [
        Copy(service, index, endpoint)
        for service in SERVICES
        for index, endpoint in enumerate(service_endpoints(settings, service), start=1)
    ]
    copies.append(Copy("worker", 1))
    copies.extend(Copy("flusher", index) for index in range(1, FLUSHER_COPIES + 1))
    copies.append(Copy("gateway", 1))
    return copies


def address_env(settings: Settings) -> dict[str, str]:
    """QUERY_GRPC_ADDR etc. as comma-separated lists of every copy's address."""
    return {
        ADDR_VARIABLES[service]: ",".join(str(e) for e in service_endpoints(settings, service))
        for service in SERVICES
    }


def _probe(settings: Settings, copy: Copy) -> Probe | None:
    if copy.listen is not None:
        return tcp_probe(copy.listen)
    if copy.component == "gateway":
        return http_probe(components.gateway_endpoint(settings), components.HEALTH_PATH)
    return None


def copy_spec(
    settings: Settings, copy: Copy, env: Mapping[str, str], ready_timeout: float = 60.0
) -> ProcessSpec:
    """Supervised `linkpulse serve` of one copy with env (cluster and address lists) set."""
    own = {**env, LISTEN_VARIABLE: str(copy.listen)} if copy.listen else dict(env)
    if copy.component != "gateway":  # the gateway serves /metrics on its HTTP port
        own[metrics_urls.PORT_VARIABLE] = str(metrics_port(settings, copy))
    child = components.serve_spec(
        settings, copy.component, copy.name, _probe(settings, copy), own, ready_timeout
    )
    return components.supervised(settings, child)


def metrics_port(settings: Settings, copy: Copy) -> int:
    """The metrics port of a copy: its component's, COPY_PORT_STEP more for each further copy."""
    return metrics_urls.copy_port(settings, copy.component, copy.index, COPY_PORT_STEP)


def metrics(settings: Settings) -> dict[str, str | None]:
    """The metrics URL of every copy, by process name."""
    return {
        copy.name: metrics_urls.url(
            settings,
            copy.component,
            None if copy.component == "gateway" else metrics_port(settings, copy),
        )
        for copy in plan(settings)
    }


def specs(
    settings: Settings, env: Mapping[str, str], ready_timeout: float = 60.0
) -> list[ProcessSpec]:
    """Supervised specs of every copy in start order."""
    return [copy_spec(settings, copy, env, ready_timeout) for copy in plan(settings)]
