"""Requests uvicorn cannot parse are answered 400 in the error envelope, over a raw socket."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
import uvicorn

from gateway.app import create_app
from gateway.http_protocol import HTTP_PROTOCOL, EnvelopeH11Protocol
from gateway.server import uvicorn_config
from services.config import Settings
from tests.ports import free_port

pytestmark = pytest.mark.asyncio(loop_scope="session")

MALFORMED = [
    b"GET /api/analytics/\xff HTTP/1.1\r\nHost: x\r\n\r\n",  # a raw 0xFF byte in the URL
    b"NONSENSE\r\n\r\n",  # no request line
    b"GET / HTTP/1.1 extra\r\nHost: x\r\n\r\n",  # a malformed request line
    b"GET / HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n",  # a malformed header
]


@pytest_asyncio.fixture(
    scope="session", loop_scope="session", params=[HTTP_PROTOCOL, EnvelopeH11Protocol]
)
async def gateway_port(request: pytest.FixtureRequest, backend) -> AsyncIterator[int]:
    """The gateway under uvicorn with its own configuration and one of the two protocols."""
    port = free_port()
    settings = Settings(
        query_addr=backend.address,
        live_addr=backend.address,
        export_addr=backend.address,
        audit_addr=backend.address,
        gateway_host="127.0.0.1",
        gateway_port=port,
    )
    config = uvicorn_config(settings, create_app(settings))
    config = replace_http(config, request.param)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.025)
    yield port
    server.should_exit = True
    await task


def replace_http(config: uvicorn.Config, protocol: type) -> uvicorn.Config:
    config.http = protocol
    config.log_level = "warning"
    return config


async def _raw(port: int, data: bytes) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    async with asyncio.timeout(5):
        raw = await reader.read()  # until the server closes
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
    return int(status_line.split()[1]), headers, body


@pytest.mark.parametrize("data", MALFORMED)
async def test_unparseable_request_gets_the_envelope(gateway_port: int, data: bytes) -> None:
    status, headers, body = await _raw(gateway_port, data)
    assert status == 400
    assert headers["content-type"] == "application/json"
    assert int(headers["content-length"]) == len(body)
    assert json.loads(body) == {
        "success": False,
        "error": {
            "code": "malformed_request",
            "message": "the HTTP request could not be parsed (request line, URL or headers)",
        },
    }


async def test_a_well_formed_request_still_works(gateway_port: int) -> None:
    status, _, body = await _raw(
        gateway_port,
        b"GET /api/analytics/42/summary HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    assert status == 200 and json.loads(body)["success"] is True
