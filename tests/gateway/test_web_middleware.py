"""Gzip for clients that accept it, CORS only for the configured origins."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import orjson

from gateway.app import create_app
from services.config import Settings
from tests.asgi_server import serving

ORIGIN = "https://dash.example.com"


@asynccontextmanager
async def gateway(backend_address: str, **options) -> AsyncIterator[httpx.AsyncClient]:
    """A gateway over the fake backend with the given settings, and a client of it."""
    settings = Settings(
        query_addr=backend_address,
        live_addr=backend_address,
        export_addr=backend_address,
        audit_addr=backend_address,
        gateway_deadline_seconds=1.0,
        gateway_shutdown_grace_seconds=1.0,
        **options,
    )
    async with serving(create_app(settings)) as port:
        # httpx would decompress: compare the raw bytes on the wire.
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            yield client


async def _raw(
    client: httpx.AsyncClient, path: str, **headers: str
) -> tuple[httpx.Response, bytes]:
    async with client.stream("GET", path, headers=headers) as response:
        return response, b"".join([chunk async for chunk in response.aiter_raw()])


async def test_large_answers_are_gzipped_for_clients_that_accept_it(gateway_url):
    async with httpx.AsyncClient(base_url=gateway_url) as client:
        response, body = await _raw(client, "/openapi.json", **{"accept-encoding": "gzip"})
        assert response.headers["content-encoding"] == "gzip"
        assert "accept-encoding" in response.headers["vary"].lower()
        document = orjson.loads(gzip.decompress(body))
        assert document["openapi"].startswith("3.")
        assert len(body) < len(orjson.dumps(document)) / 3

        plain, plain_body = await _raw(client, "/openapi.json", **{"accept-encoding": "identity"})
        assert "content-encoding" not in plain.headers
        assert orjson.loads(plain_body) == document


async def test_small_answers_and_api_answers_below_the_threshold_stay_plain(gateway_url, backend):
    async with httpx.AsyncClient(base_url=gateway_url) as client:
        response, body = await _raw(
            client,
            "/api/analytics/workspace/overview",
            **{"accept-encoding": "gzip", "authorization": "Bearer k"},
        )
        assert response.status_code == 200
        assert "content-encoding" not in response.headers
        assert orjson.loads(body)["success"] is True


async def test_gzip_can_be_turned_off(backend):
    async with gateway(backend.address, gateway_gzip_min_bytes=0) as client:
        response, body = await _raw(client, "/openapi.json", **{"accept-encoding": "gzip"})
        assert "content-encoding" not in response.headers
        assert orjson.loads(body)["openapi"]


async def test_no_cors_headers_by_default(gateway_url):
    async with httpx.AsyncClient(base_url=gateway_url) as client:
        r = await client.get("/openapi.json", headers={"origin": ORIGIN})
        assert "access-control-allow-origin" not in r.headers
        preflight = await client.options(
            "/api/analytics/workspace/overview",
            headers={"origin": ORIGIN, "access-control-request-method": "GET"},
        )
        assert "access-control-allow-origin" not in preflight.headers


async def test_cors_for_the_configured_origins(backend):
    async with gateway(backend.address, gateway_cors_origins=(ORIGIN,)) as client:
        preflight = await client.options(
            "/api/analytics/workspace/overview",
            headers={
                "origin": ORIGIN,
                "access-control-request-method": "GET",
                "access-control-request-headers": "authorization",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == ORIGIN
        assert "authorization" in preflight.headers["access-control-allow-headers"].lower()

        r = await client.get(
            "/api/analytics/workspace/overview",
            headers={"origin": ORIGIN, "authorization": "Bearer k"},
        )
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == ORIGIN
        exposed = r.headers["access-control-expose-headers"].lower()
        assert "x-request-id" in exposed and "retry-after" in exposed

        other = await client.options(
            "/api/analytics/workspace/overview",
            headers={"origin": "https://evil.example", "access-control-request-method": "GET"},
        )
        assert other.status_code == 400
        assert "access-control-allow-origin" not in other.headers
