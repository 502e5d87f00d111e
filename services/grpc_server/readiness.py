"""A gRPC service's readiness on the standard health service: "" and the service's name answer
SERVING while its stores answer and their migrations are current, NOT_SERVING otherwise; the
`liveness` name answers SERVING as long as the process runs.

The gRPC health protocol carries a status only, so each change is logged on one line with the
per-dependency detail (the gateway's /readyz gathers the statuses of every service)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping

from grpc_health.v1 import health, health_pb2

from services.stores.clickhouse import ClickHouse
from services.stores.deps import Deps
from services.stores.node_lease import LeasedIds
from services.stores.readiness import (
    NOT_READY,
    Dependency,
    Readiness,
    Report,
    node_lease_held,
    store_dependencies,
)

log = logging.getLogger("linkpulse.readiness")

# The health service name a liveness probe asks (Kubernetes: `grpc: {service: liveness}`).
LIVENESS = "liveness"

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def service_dependencies(
    name: str, deps: Deps, ch: ClickHouse, holdings: Mapping[str, object] | None = None
) -> list[Dependency]:
    """What each service needs to do its job (ch: the ClickHouse client to check with;
    holdings: what the service holds for its life, such as live's event-id node lease).

    query serves whole days from PostgreSQL's daily aggregates when ClickHouse is down, so
    ClickHouse only degrades it; export reads ClickHouse for every file; live and audit never
    touch it; live mints event ids only under a node lease."""
    if name == "query":
        return store_dependencies(
            postgres=deps.pg, redis=deps.redis, clickhouse=ch, clickhouse_required=False
        )
    if name == "export":
        return store_dependencies(postgres=deps.pg, redis=deps.redis, clickhouse=ch)
    if name == "live":
        found = store_dependencies(postgres=deps.pg, redis=deps.redis)
        ids = (holdings or {}).get("ids")
        if isinstance(ids, LeasedIds):
            found.append(Dependency("node_lease", node_lease_held(ids), after="redis"))
        return found
    if name == "audit":
        return store_dependencies(postgres=deps.pg)
    raise ValueError(f"no readiness known for service {name!r}")


class HealthReporter:
    """Re-checks a Readiness every interval in the background and sets the health statuses of
    names from it, logging each change."""

    def __init__(
        self,
        servicer: health.aio.HealthServicer,
        names: tuple[str, ...],
        readiness: Readiness,
        interval: float,
        on_stop: Callable[[], None] = lambda: None,
    ) -> None:
        self._servicer = servicer
        self._names = names
        self._readiness = readiness
        self._interval = max(0.05, interval)
        self._last: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._on_stop = on_stop

    async def start(self) -> Report:
        """Check once (statuses set before the server answers), then keep checking."""
        await self._servicer.set(LIVENESS, SERVING)
        report = await self.check()
        self._task = asyncio.create_task(self._loop())
        return report

    async def check(self) -> Report:
        """Check now and set the statuses."""
        report = await self._readiness.refresh()
        summary = report.summary()
        if summary != self._last:
            level = logging.WARNING if report.status == NOT_READY else logging.INFO
            log.log(level, "%s readiness %s", self._names[0] or "server", summary)
            self._last = summary
        status = SERVING if report.ready else NOT_SERVING
        for name in self._names:
            await self._servicer.set(name, status)
        return report

    async def stop(self) -> None:
        """Stop checking (the statuses stay as last set)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._on_stop()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.check()
            except Exception:  # noqa: BLE001 - the next round tries again
                log.exception("readiness check failed")


def reporter(
    name: str,
    full_name: str,
    deps: Deps,
    servicer: health.aio.HealthServicer,
    holdings: Mapping[str, object] | None = None,
) -> HealthReporter:
    """The HealthReporter of service name (full_name: its gRPC name) on deps' stores and what
    it holds."""
    settings = deps.settings
    # A client of its own: a hung check never holds a slot the service's queries need.
    ch = ClickHouse(deps.ch.target, pool_size=1)
    dependencies = service_dependencies(name, deps, ch, holdings)
    readiness = Readiness(
        dependencies, settings.readiness_timeout_seconds, settings.readiness_interval_seconds
    )
    return HealthReporter(
        servicer, (full_name, ""), readiness, settings.readiness_interval_seconds, ch.close
    )
