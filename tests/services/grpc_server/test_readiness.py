"""gRPC health is readiness: a service whose Redis is not there answers NOT_SERVING on "" and
its name (liveness stays SERVING), SERVING once Redis answers, NOT_SERVING again when it dies."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.auth import signing
from services.grpc_server.readiness import LIVENESS
from tests.chaos.servers import RedisServer
from tests.e2e.copies import Copies
from tests.ports import free_port

QUERY = "linkpulse.v1.QueryService"
NAMES = ("", QUERY, LIVENESS)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server on a throw-away port, not started yet."""
    server = RedisServer(tmp_path / "redis")
    try:
        yield server
    finally:
        if server.proc is not None and server.proc.poll() is None:
            server.kill()


@pytest.fixture
def copies(system, tmp_path: Path, redis_server: RedisServer) -> Iterator[Copies]:
    """Processes of this test on the suite's PostgreSQL and ClickHouse and redis_server's port."""
    settings = replace(
        system.settings,
        run_dir=tmp_path / "run",
        query_addr=f"127.0.0.1:{free_port()}",
        redis_url=redis_server.url,
    )
    started = Copies(settings, signing.load_secret(system.settings).decode())
    try:
        yield started
    finally:
        started.stop_all()


async def _statuses(address: str, names: tuple[str, ...] = NAMES) -> dict[str, str]:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        found = {}
        for name in names:
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
            found[name] = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        return found


async def _until(
    address: str, status: str, seconds: float = 30.0, names: tuple[str, ...] = NAMES
) -> dict[str, str]:
    deadline = time.monotonic() + seconds
    while True:
        found = await _statuses(address, names)
        if found[""] == status or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.1)


async def test_not_serving_until_redis_answers(copies: Copies, redis_server: RedisServer) -> None:
    spec = copies.start("query", "ready-query", READINESS_INTERVAL_SECONDS="0.2")
    address = copies.settings.query_addr
    assert await _statuses(address) == {
        "": "NOT_SERVING",
        QUERY: "NOT_SERVING",
        LIVENESS: "SERVING",
    }
    redis_server.start()
    assert await _until(address, "SERVING") == {
        "": "SERVING",
        QUERY: "SERVING",
        LIVENESS: "SERVING",
    }
    redis_server.kill()
    assert (await _until(address, "NOT_SERVING"))[QUERY] == "NOT_SERVING"
    log = spec.log_path.read_text()
    # One line per change, with the dependency at fault.
    assert log.count("readiness not_ready: redis down") == 2, log
    assert log.count("readiness ready") == 1, log


async def test_live_serves_once_redis_answers_and_its_node_is_leased(
    copies: Copies, redis_server: RedisServer
) -> None:
    settings = replace(copies.settings, live_addr=f"127.0.0.1:{free_port()}")
    copies.settings = settings
    spec = copies.start("live", "ready-live", READINESS_INTERVAL_SECONDS="0.2")
    live = "linkpulse.v1.LiveService"
    names = ("", live, LIVENESS)
    assert await _statuses(settings.live_addr, names) == {
        "": "NOT_SERVING",
        live: "NOT_SERVING",
        LIVENESS: "SERVING",
    }
    redis_server.start()
    assert (await _until(settings.live_addr, "SERVING", names=names))[live] == "SERVING"
    log = spec.log_path.read_text()
    assert "LiveService readiness not_ready: redis down" in log, log
    assert "LiveService readiness ready" in log, log
