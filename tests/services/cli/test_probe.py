"""`linkpulse probe`: the healthcheck command of docker-compose.yml, against real servers on
sockets (a gRPC server with the standard health service, an HTTP server)."""

from __future__ import annotations

import asyncio
import http.server
import json
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from tests.ports import free_port


def _probe(*args: str) -> tuple[int, dict[str, object]]:
    """Exit status and JSON output of `linkpulse probe ARGS` run as its own process."""
    done = subprocess.run(
        [sys.executable, "-m", "services.cli.main", "probe", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.returncode, json.loads(done.stdout)


@pytest.fixture
async def health_server() -> AsyncIterator[tuple[str, health.aio.HealthServicer]]:
    """A gRPC server answering grpc.health.v1 on a free loopback port."""
    server = grpc.aio.server()
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    address = f"127.0.0.1:{free_port()}"
    server.add_insecure_port(address)
    await server.start()
    try:
        yield address, servicer
    finally:
        await server.stop(None)


async def _run(*args: str) -> tuple[int, dict[str, object]]:
    return await asyncio.to_thread(_probe, *args)


async def test_grpc_probe_is_healthy_only_while_serving(
    health_server: tuple[str, health.aio.HealthServicer],
) -> None:
    address, servicer = health_server
    await servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    await servicer.set("linkpulse.v1.QueryService", health_pb2.HealthCheckResponse.NOT_SERVING)
    assert await _run("grpc", address) == (
        0,
        {"address": address, "service": "", "status": "SERVING"},
    )
    status, out = await _run("grpc", address, "--service", "linkpulse.v1.QueryService")
    assert (status, out["status"]) == (1, "NOT_SERVING")
    status, out = await _run("grpc", address, "--service", "linkpulse.v1.Unknown")
    assert (status, out["status"]) == (1, "NOT_FOUND")
    await servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    status, out = await _run("grpc", address)
    assert (status, out["status"]) == (1, "NOT_SERVING")


def test_grpc_probe_of_nothing_listening_is_unhealthy() -> None:
    status, out = _probe("grpc", f"127.0.0.1:{free_port()}", "--timeout", "1")
    assert status == 1
    assert out["status"] in ("UNAVAILABLE", "DEADLINE_EXCEEDED")


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        code = 200 if self.path == "/readyz" else 503
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's name
        """Quiet."""


@pytest.fixture
def http_server() -> Iterator[str]:
    """An HTTP server on a free loopback port: 200 on /readyz, 503 elsewhere."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_http_probe_is_healthy_only_on_2xx(http_server: str) -> None:
    assert _probe("http", f"{http_server}/readyz") == (
        0,
        {"url": f"{http_server}/readyz", "status": 200},
    )
    assert _probe("http", f"{http_server}/other") == (
        1,
        {"url": f"{http_server}/other", "status": 503},
    )
    status, out = _probe("http", f"http://127.0.0.1:{free_port()}/readyz")
    assert status == 1
    assert out["status"] is None and out["error"]
