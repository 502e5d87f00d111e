"""GET /readyz: whether the gateway can do its job. Every backend service answers SERVING on its
gRPC health (its own readiness: stores answer, migrations current; a service of several copies
is ready when one copy is) and, with the snapshot cache on, the gateway's Redis answers.

200 with the report in the success envelope, else 503 with it as the failure's `details`. The
report is reused for READINESS_INTERVAL_SECONDS, so probes cost the backends nothing more."""

from __future__ import annotations

from collections.abc import Mapping

from redis.asyncio import Redis
from starlette.requests import Request
from starlette.responses import Response

from gateway.health import SERVING, check_copies
from gateway.pipeline import BackendsRef
from gateway.responses import OrjsonResponse
from services.config import Settings
from services.stores.readiness import (
    DOWN,
    OK,
    Dependency,
    Outcome,
    Probe,
    Readiness,
    Report,
    redis_answers,
)
from services.stores.redisclient import redis_of


def service_serving(backends: BackendsRef, key: str, service_name: str, deadline: float) -> Probe:
    """Probe: some copy of the backend service key answers SERVING for service_name."""

    async def probe() -> Outcome:
        status = await check_copies(backends.get().replicas[key], service_name, deadline)
        return Outcome(OK if status == SERVING else DOWN, status)

    return probe


def readyz_body(readiness: Readiness, report: Report) -> tuple[int, dict[str, object]]:
    """HTTP status and envelope of a report."""
    data = report.to_dict(readiness.age(report))
    if report.ready:
        return 200, {"success": True, "data": data}
    error = {"code": "not_ready", "message": report.summary(), "details": data}
    return 503, {"success": False, "error": error}


class GatewayReadiness:
    """The gateway's dependencies and the /readyz endpoint over them."""

    def __init__(self, readiness: Readiness, redis: Redis | None) -> None:
        self.readiness = readiness
        self._redis = redis

    @classmethod
    def from_settings(
        cls, settings: Settings, backends: BackendsRef, service_names: Mapping[str, str]
    ) -> GatewayReadiness:
        """Readiness of every backend of service_names (key -> gRPC service name) and of the
        snapshot cache's Redis when the cache is on."""
        timeout = settings.readiness_timeout_seconds
        dependencies = [
            Dependency(key, service_serving(backends, key, name, timeout))
            for key, name in service_names.items()
        ]
        # A client of its own (the cache's serves requests): the same server, asked apart.
        redis = redis_of(settings) if settings.snapshot_cache else None
        if redis is not None:
            dependencies.append(Dependency("redis", redis_answers(redis)))
        readiness = Readiness(dependencies, timeout, settings.readiness_interval_seconds)
        return cls(readiness, redis)

    async def endpoint(self, request: Request) -> Response:
        """GET /readyz."""
        status, body = readyz_body(self.readiness, await self.readiness.report())
        return OrjsonResponse(body, status_code=status)

    async def aclose(self) -> None:
        """Close the Redis client."""
        if self._redis is not None:
            await self._redis.aclose()
