"""With Redis unreachable, the live routes answer 503 in the envelope with a reason, never 500.

The test runs its own live service and gateway pointed at a Redis port nothing listens on; the
suite's processes are left alone.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import grpc
import httpx
import pytest

from services import protos
from services.auth import signing
from services.config import Settings
from services.devstack import components, processes
from tests.ports import free_port
from tests.services.devstack.helpers import process_env


@pytest.fixture
def down(system, tmp_path: Path) -> Iterator[Settings]:
    """Settings of a live service and a gateway of this test whose Redis is unreachable."""
    tag = f"{os.getpid()}-{time.monotonic_ns()}"
    settings = replace(
        system.settings,
        live_addr=f"127.0.0.1:{free_port()}",
        gateway_port=free_port(),
        run_dir=tmp_path / "run",
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
        ingest_stream=f"lp:ingest:down:{tag}",
    )
    secret = signing.load_secret(system.settings).decode()
    env = process_env(settings, SIGNING_KEY=secret, SNAPSHOT_TTL_SECONDS="0")
    specs = []
    try:
        for name in ("live", "gateway"):
            base = components.spec(settings, name)
            spec = replace(
                base,
                name=f"down-{name}",
                pid_path=settings.run_dir / "pids" / f"down-{name}.pid",
                log_path=settings.run_dir / "logs" / f"down-{name}.log",
                env=env,
            )
            processes.start(spec)
            specs.append(spec)
        yield settings
    finally:
        for spec in reversed(specs):
            processes.stop(spec)


@pytest.mark.parametrize("path", ["/api/analytics/live", "/api/analytics/live/stats"])
async def test_live_routes_answer_503_with_a_reason(down, tenant, path) -> None:
    t = await tenant()
    async with httpx.AsyncClient(base_url=components.gateway_url(down), timeout=30) as client:
        r = await client.get(path, headers=t.headers)
    assert r.status_code == 503, r.text
    body = r.json()
    assert body["success"] is False and body["error"]["code"] == "unavailable"
    assert "Redis is unreachable" in body["error"]["message"], body


async def test_grpc_live_reads_are_unavailable(down, tenant) -> None:
    t = await tenant()
    async with grpc.aio.insecure_channel(down.live_addr) as channel:
        stub = protos.live_pb2_grpc.LiveServiceStub(channel)
        for call in (stub.ListLive, stub.GetLiveStats):
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await call(protos.live_pb2.LiveRequest(), metadata=t.metadata)
            assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            async for _ in stub.Subscribe(protos.live_pb2.LiveRequest(), metadata=t.metadata):
                pass
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "Redis is unreachable" in (raised.value.details() or "")
