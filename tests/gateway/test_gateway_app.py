"""The app's own answers, no backend needed: 404/405/400/413/426 envelopes and /openapi.json."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest_asyncio
from google.protobuf.message import Message
from starlette.requests import Request
from starlette.responses import Response

from gateway.app import create_app
from gateway.pipeline import Pipeline
from gateway.responses import success_response
from services.config import Settings
from services.contract.routes import Route


@pytest_asyncio.fixture(loop_scope="session")
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(gateway_max_body_bytes=1024))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        yield http


async def test_unknown_path_is_a_404_envelope(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/analytics/nowhere/at/all")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "success": False,
        "error": {"code": "not_found", "message": "no route for /api/analytics/nowhere/at/all"},
    }


async def test_non_integer_link_id_does_not_match(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/analytics/abc/summary")
    assert response.status_code == 404


async def test_wrong_method_is_a_405_envelope(client: httpx.AsyncClient) -> None:
    response = await client.delete("/api/analytics/workspace/overview")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert "GET" in response.headers["allow"]


async def test_binding_errors_are_400_envelopes(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/analytics/workspace/overview?days=abc")
    assert response.status_code == 400
    assert response.json() == {
        "success": False,
        "error": {
            "code": "invalid_argument",
            "message": "query parameter 'days' must be an integer",
            "field": "days",
        },
    }
    assert response.headers["x-request-id"]


async def test_status_code_envelope_for_seed_004_errors(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/analytics", content=b"{oops")
    assert response.status_code == 400
    body = response.json()
    assert body["success"] is False and body["status_code"] == 400 and body["data"] is None
    assert body["message"].startswith("request body is not valid JSON")


async def test_body_over_the_limit_is_413(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/analytics/batch", content=b"x" * 2048)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(4):
            yield b"y" * 512

    streamed = await client.post("/api/analytics/batch", content=chunks())
    assert streamed.status_code == 413


async def test_plain_get_on_the_websocket_route_is_426(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/analytics/live/ws")
    assert response.status_code == 426
    assert response.json()["error"]["code"] == "upgrade_required"


async def test_openapi_is_served(client: httpx.AsyncClient) -> None:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert "/api/analytics/{link_id}/summary" in document["paths"]
    assert document["components"]["schemas"]


async def test_pipeline_can_be_wrapped() -> None:
    seen: list[tuple[str, int]] = []

    def wrap(inner: Pipeline) -> Pipeline:
        async def cached(route: Route, request: Request, message: Message) -> Response:
            seen.append((route.rpc, message.ByteSize()))
            if route.options.cacheable:
                return success_response({"cached": True})
            return await inner(route, request, message)

        return cached

    app = create_app(Settings(), wrap_pipeline=wrap)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        cached = await http.get("/api/analytics/workspace/overview?days=7")
        refused = await http.get("/api/analytics/workspace/overview?days=x")
        uncached = await http.get("/api/analytics/live")
    assert cached.json() == {"success": True, "data": {"cached": True}}
    assert refused.status_code == 400  # bound (and refused) before the wrapper
    assert uncached.status_code == 500  # fell through to the real call (no backends here)
    assert seen == [("GetWorkspaceOverview", 2), ("ListLive", 0)]
