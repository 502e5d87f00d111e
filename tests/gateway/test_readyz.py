"""GET /readyz: 200 when every backend serves and the cache's Redis answers, 503 with the
dependency at fault otherwise; /healthz keeps reporting whether the processes are up."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio

from gateway.app import create_app
from services.config import Settings
from services.grpc_server.readiness import LIVENESS
from services.protos import SERVICES
from tests.asgi_server import serving
from tests.ports import free_port

pytestmark = pytest.mark.asyncio(loop_scope="session")

NAMES = {
    "query": "linkpulse.v1.QueryService",
    "live": "linkpulse.v1.LiveService",
    "export": "linkpulse.v1.ExportService",
    "audit": "linkpulse.v1.AuditService",
}


@dataclass
class Backend:
    """A grpc.aio server answering the health service for every backend."""

    address: str
    health: health_aio.HealthServicer

    async def set(self, name: str, status: int) -> None:
        """Set the health status of one service name."""
        await self.health.set(name, status)  # type: ignore[arg-type]


@pytest.fixture
async def backend() -> AsyncIterator[Backend]:
    server = grpc.aio.server()
    health = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    for name in (*NAMES.values(), ""):
        await health.set(name, health_pb2.HealthCheckResponse.SERVING)
    await health.set(LIVENESS, health_pb2.HealthCheckResponse.SERVING)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield Backend(f"127.0.0.1:{port}", health)
    finally:
        await server.stop(grace=None)


async def _gateway(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(create_app(settings)) as port:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            yield client


@pytest.fixture
async def gateway(backend: Backend, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A gateway over backend, checking readiness on every request (interval 0)."""
    own = Settings(
        **{f"{name}_addr": backend.address for name in SERVICES},
        redis_url=settings.redis_url,
        snapshot_cache=True,
        readiness_interval_seconds=0.0,
        gateway_health_interval_seconds=0.05,
    )
    async for client in _gateway(own):
        yield client


async def test_ready_when_every_backend_serves(gateway: httpx.AsyncClient) -> None:
    r = await gateway.get("/readyz")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] is True
    data = body["data"]
    assert data["status"] == "ready"
    assert {name: check["status"] for name, check in data["checks"].items()} == {
        "query": "ok",
        "live": "ok",
        "export": "ok",
        "audit": "ok",
        "redis": "ok",
    }
    assert data["checks"]["query"]["detail"] == "SERVING"


async def test_a_backend_not_serving_is_not_ready_while_alive(
    gateway: httpx.AsyncClient, backend: Backend
) -> None:
    await backend.set(NAMES["audit"], health_pb2.HealthCheckResponse.NOT_SERVING)
    r = await gateway.get("/readyz")
    assert r.status_code == 503, r.text
    body = r.json()
    assert body["success"] is False
    error = body["error"]
    assert error["code"] == "not_ready"
    assert error["message"] == "not_ready: audit down (NOT_SERVING)"
    assert error["details"]["checks"]["audit"]["status"] == "down"
    assert error["details"]["checks"]["query"]["status"] == "ok"
    # Liveness: the audit process is up, so /healthz is content.
    for _ in range(50):
        healthz = await gateway.get("/healthz")
        if healthz.status_code == 200:
            break
        await asyncio.sleep(0.05)
    assert healthz.status_code == 200, healthz.text
    assert healthz.json()["data"]["services"]["audit"] == "SERVING"

    await backend.set(NAMES["audit"], health_pb2.HealthCheckResponse.SERVING)
    r = await gateway.get("/readyz")
    assert r.status_code == 200, r.text


async def test_an_unreachable_cache_redis_is_not_ready(
    backend: Backend, settings: Settings
) -> None:
    own = Settings(
        **{f"{name}_addr": backend.address for name in SERVICES},
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
        snapshot_cache=True,
    )
    async for client in _gateway(own):
        r = await client.get("/readyz")
        assert r.status_code == 503, r.text
        checks = r.json()["error"]["details"]["checks"]
        assert checks["redis"]["status"] == "down"
        assert "redis" in r.json()["error"]["message"]
        assert {checks[name]["status"] for name in SERVICES} == {"ok"}


async def test_without_the_cache_redis_is_not_a_dependency(
    backend: Backend, settings: Settings
) -> None:
    own = Settings(
        **{f"{name}_addr": backend.address for name in SERVICES},
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
        snapshot_cache=False,
    )
    async for client in _gateway(own):
        r = await client.get("/readyz")
        assert r.status_code == 200, r.text
        assert "redis" not in r.json()["data"]["checks"]


async def test_the_suites_gateway_is_ready(system, http: httpx.AsyncClient) -> None:
    r = await http.get("/readyz")
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["status"] == "ready"
    assert {name: check["detail"] for name, check in data["checks"].items() if name != "redis"} == {
        name: "SERVING" for name in SERVICES
    }
