"""The gateway's request metrics: route templates (never raw paths), status, and /metrics."""

from __future__ import annotations

import httpx
from prometheus_client import REGISTRY
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from gateway.request_metrics import metrics_endpoint
from gateway.request_telemetry import RequestTelemetry


def _count(route: str, method: str, status: str) -> float:
    labels = {"route": route, "method": method, "status": status}
    return REGISTRY.get_sample_value("linkpulse_http_requests_total", labels) or 0.0


def _observed(route: str, method: str) -> float:
    labels = {"route": route, "method": method}
    return REGISTRY.get_sample_value("linkpulse_http_request_duration_seconds_count", labels) or 0


async def _link(request: Request) -> Response:
    return PlainTextResponse(request.path_params["link_id"])


async def _boom(request: Request) -> Response:
    raise RuntimeError("unexpected")


def _app() -> Starlette:
    return Starlette(
        routes=[
            Route("/t/links/{link_id}/stats", _link, methods=["GET"]),
            Route("/t/boom", _boom, methods=["GET"]),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
        ],
        middleware=[Middleware(RequestTelemetry, access_log=False)],
    )


async def test_requests_are_counted_by_route_template() -> None:
    template = "/t/links/{link_id}/stats"
    before = _count(template, "GET", "200"), _observed(template, "GET")
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        for link_id in (1, 2, 3):
            assert (await client.get(f"/t/links/{link_id}/stats")).text == str(link_id)
    assert _count(template, "GET", "200") == before[0] + 3
    assert _observed(template, "GET") == before[1] + 3
    assert (
        REGISTRY.get_sample_value(
            "linkpulse_http_requests_total",
            {"route": "/t/links/1/stats", "method": "GET", "status": "200"},
        )
        is None
    )


async def test_unmatched_paths_are_other_and_wrong_methods_keep_their_route() -> None:
    other, refused = _count("other", "GET", "404"), _count("/t/boom", "POST", "405")
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/t/nothing/here")).status_code == 404
        assert (await client.post("/t/boom")).status_code == 405
    assert _count("other", "GET", "404") == other + 1
    assert _count("/t/boom", "POST", "405") == refused + 1


async def test_an_unhandled_error_counts_as_500() -> None:
    before = _count("/t/boom", "GET", "500")
    transport = httpx.ASGITransport(app=_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/t/boom")).status_code == 500
    assert _count("/t/boom", "GET", "500") == before + 1


async def test_metrics_route_serves_the_exposition_and_is_not_counted() -> None:
    before = _count("/metrics", "GET", "200")
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        answer = await client.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    assert "# TYPE linkpulse_http_requests_total counter" in answer.text
    assert _count("/metrics", "GET", "200") == before == 0
