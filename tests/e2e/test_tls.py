"""The stack's gRPC hops over mutual TLS, once: the four services require client certificates
from a throw-away CA, the gateway presents one; REST answers through it, and a plaintext
client or a TLS client without a certificate is refused by a service."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.auth import signing
from services.config import Settings
from services.devstack import components
from services.grpc_server.channels import open_channel
from services.protos import SERVICES
from tests.e2e.copies import Copies
from tests.ports import free_port
from tests.services.grpc_server.certs import make_certs


@pytest.fixture
def copies(system, tmp_path: Path) -> Iterator[Copies]:
    settings = replace(
        system.settings,
        run_dir=tmp_path / "run",
        gateway_port=free_port(),
        **{f"{name}_addr": f"127.0.0.1:{free_port()}" for name in SERVICES},
    )
    started = Copies(settings, signing.load_secret(system.settings).decode())
    try:
        yield started
    finally:
        started.stop_all()


async def _health(settings: Settings, address: str) -> str:
    channel = open_channel(settings, address)
    try:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=5
        )
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))
    except grpc.aio.AioRpcError as exc:
        return str(exc.code().name)
    finally:
        await channel.close()


async def test_gateway_to_services_over_mutual_tls(copies, tenant, tmp_path: Path) -> None:
    certs = make_certs(tmp_path / "certs")
    t = await tenant()
    for name in SERVICES:
        copies.start(name, f"tls-{name}", **certs.server_env(mutual=True))
    copies.start("gateway", "tls-gateway", SNAPSHOT_CACHE="off", **certs.client_env(mutual=True))
    async with httpx.AsyncClient(base_url=components.gateway_url(copies.settings)) as client:
        health = await client.get("/healthz")
        assert health.status_code == 200, health.text
        r = await client.get("/api/analytics/workspace/overview", headers=t.headers)
        assert r.status_code == 200, r.text
        r = await client.post("/api/track/click", json={"linkId": t.link_ids[0]}, headers=t.headers)
        assert r.status_code == 200, r.text

    blank = {
        f"grpc_tls_{field}": ""
        for field in ("ca", "client_cert", "client_key", "cert", "key", "client_ca", "server_name")
    }
    plain = replace(copies.settings, **blank)
    with_cert = replace(
        plain,
        grpc_tls_ca=str(certs.ca),
        grpc_tls_client_cert=str(certs.client_cert),
        grpc_tls_client_key=str(certs.client_key),
    )
    without_cert = replace(plain, grpc_tls_ca=str(certs.ca))
    for name in SERVICES:
        address = copies.settings.grpc_addr(name)
        assert await _health(with_cert, address) == "SERVING"
        assert await _health(plain, address) == "UNAVAILABLE"
        assert await _health(without_cert, address) == "UNAVAILABLE"
