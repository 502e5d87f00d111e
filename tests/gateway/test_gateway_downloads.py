"""Server-streaming HttpBody routes (export downloads) served as one streamed HTTP body."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import httpx
import pytest_asyncio
from google.api import httpbody_pb2

from gateway.app import create_app
from services import protos
from services.config import Settings
from services.contract.compiled import contract
from tests.asgi_server import serving

CHUNKS = [b"a" * 1000, b"b" * 1000, b"c"]


class FakeDownloads(protos.export_pb2_grpc.ExportServiceServicer):
    """DownloadExport: three chunks for token `good`, 401 otherwise, or a break mid-way."""

    async def DownloadExport(self, request, context):  # noqa: N802
        if request.token not in ("good", "breaks"):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "invalid download token")
        await context.send_initial_metadata(
            (("content-disposition", f'attachment; filename="{request.id}.csv.gz"'),)
        )
        yield httpbody_pb2.HttpBody(content_type="application/gzip", data=CHUNKS[0])
        if request.token == "breaks":
            await context.abort(grpc.StatusCode.UNAVAILABLE, "gone")
        for chunk in CHUNKS[1:]:
            yield httpbody_pb2.HttpBody(data=chunk)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def url() -> AsyncIterator[str]:
    server = grpc.aio.server()
    protos.export_pb2_grpc.add_ExportServiceServicer_to_server(FakeDownloads(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    address = f"127.0.0.1:{port}"
    settings = Settings(
        query_addr=address,
        live_addr=address,
        export_addr=address,
        audit_addr=address,
        gateway_deadline_seconds=2.0,
        gateway_max_body_bytes=1 << 20,
        gateway_health_timeout_seconds=1.0,
        gateway_shutdown_grace_seconds=1.0,
    )
    async with serving(create_app(settings)) as gateway_port:
        yield f"http://127.0.0.1:{gateway_port}/api/analytics/exports/exp_1/download"
    await server.stop(grace=None)


def test_the_route_is_a_download_not_a_websocket():
    [route] = [r for r in contract().routes if r.rpc == "DownloadExport"]
    assert route.is_download and not route.is_websocket and route.http_method == "GET"


async def test_chunks_become_one_body_with_headers(url):
    async with httpx.AsyncClient() as client:
        r = await client.get(url, params={"token": "good"})
    assert r.status_code == 200 and r.content == b"".join(CHUNKS)
    assert r.headers["content-type"] == "application/gzip"
    assert r.headers["content-disposition"] == 'attachment; filename="exp_1.csv.gz"'
    assert r.headers["x-request-id"]


async def test_an_error_before_the_first_chunk_is_an_envelope(url):
    async with httpx.AsyncClient() as client:
        r = await client.get(url, params={"token": "bad"})
    assert r.status_code == 401
    assert r.json()["success"] is False and r.json()["error"]["message"]


async def test_a_break_mid_way_never_looks_complete(url):
    async with httpx.AsyncClient() as client:
        try:
            r = await client.get(url, params={"token": "breaks"})
        except httpx.HTTPError:
            return  # the connection was cut: the client knows the body is incomplete
    assert r.content != b"".join(CHUNKS)
