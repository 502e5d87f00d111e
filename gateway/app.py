"""The gateway's Starlette application, assembled from the route table."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute

from gateway import dashboard_page, docs_page, embed_page, static_assets
from gateway.channels import Backends
from gateway.comments import load_comments
from gateway.downloads import download_endpoint
from gateway.health import HealthMonitor, check_backends, health_body
from gateway.http_errors import GatewayError, internal_error
from gateway.openapi import build_openapi
from gateway.pipeline import BackendsRef, PipelineWrapper, UnaryPipeline
from gateway.readiness import GatewayReadiness
from gateway.request_metrics import metrics_endpoint
from gateway.responses import OrjsonResponse, error_response
from gateway.web_middleware import web_middleware
from gateway.websocket import WebSocketConfig, websocket_endpoint
from services.codegen import DESCRIPTOR_SET
from services.config import Settings
from services.contract import routes as contract_routes
from services.contract.compiled import contract
from services.grpc_server.readiness import LIVENESS
from services.telemetry import exposition

logger = logging.getLogger(__name__)

_HTTP_ERROR_CODES = {
    400: "invalid_argument",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
}

Endpoint = Callable[[Request], Awaitable[Response]]


def _http_endpoint(route: contract_routes.Route, pipeline: UnaryPipeline) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        return await pipeline(route, request)

    endpoint.__name__ = route.rpc
    return endpoint


def _upgrade_required(route: contract_routes.Route) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        error = GatewayError(426, "upgrade_required", f"{route.template.template} is a WebSocket")
        return error_response(error, headers={"upgrade": "websocket"})

    return endpoint


async def _http_exception(connection: HTTPConnection, exc: Exception) -> Response:
    """404, 405 and other router errors in the failure envelope instead of plain text."""
    assert isinstance(exc, HTTPException)
    code = _HTTP_ERROR_CODES.get(exc.status_code, "http_error")
    if exc.status_code == 404:
        message = f"no route for {connection.url.path}"
    elif exc.status_code == 405:
        message = (
            f"method {connection.scope.get('method', '')} not allowed on {connection.url.path}"
        )
    else:
        message = str(exc.detail)
    error = GatewayError(exc.status_code, code, message)
    return error_response(error, headers=dict(exc.headers or {}))


async def _unexpected(connection: HTTPConnection, exc: Exception) -> Response:
    """Last resort for an exception that escaped every endpoint: log it, answer 500."""
    logger.error("unhandled error on %s", connection.url.path, exc_info=exc)
    return error_response(internal_error())


def create_app(
    settings: Settings,
    *,
    wrap_pipeline: PipelineWrapper | None = None,
    on_shutdown: Sequence[Callable[[], Awaitable[None]]] = (),
) -> Starlette:
    """The gateway app; gRPC channels open in its lifespan and close on shutdown."""
    # wrap_pipeline gets the unary pipeline's call of a bound request (call -> envelope) and
    # returns the one the routes use: the snapshot cache plugs in there. on_shutdown closes
    # what it holds (Redis).
    table = contract().routes
    binders = contract().binders
    backends = BackendsRef()
    pipeline = UnaryPipeline(backends, binders, settings.gateway_max_body_bytes, wrap_pipeline)
    websockets = WebSocketConfig.from_settings(settings)
    openapi_bytes = orjson.dumps(build_openapi(table, binders, load_comments(DESCRIPTOR_SET)))
    service_names = contract().service_names

    liveness = {key: LIVENESS for key in service_names}  # /healthz: the processes are up

    async def check() -> dict[str, str]:
        return await check_backends(
            backends.get().replicas, liveness, settings.gateway_health_timeout_seconds
        )

    health = HealthMonitor(check, settings.gateway_health_interval_seconds)
    ready = GatewayReadiness.from_settings(settings, backends, service_names)

    async def healthz(request: Request) -> Response:
        """Backend health as last checked (at most a few intervals ago), 200 when every service
        is SERVING, else 503."""
        statuses, age = await health.statuses()
        status, body = health_body(statuses, age)
        return OrjsonResponse(body, status_code=status)

    async def openapi(request: Request) -> Response:
        """The OpenAPI document, built once at start-up."""
        return Response(openapi_bytes, media_type="application/json")

    routes: list[BaseRoute] = [
        Route("/healthz", healthz, methods=["GET"], name="healthz"),
        Route("/readyz", ready.endpoint, methods=["GET"], name="readyz"),
        Route("/openapi.json", openapi, methods=["GET"], name="openapi"),
        Route(exposition.PATH, metrics_endpoint, methods=["GET"], name="metrics"),
        Route(embed_page.PATH, embed_page.embed_page, methods=["GET"], name="embed_page"),
        *docs_page.routes(),
        Route(dashboard_page.PATH, dashboard_page.dashboard_page, name="dashboard"),
        Mount(static_assets.PATH, static_assets.static_files(), name="static"),
    ]
    for route in table:
        if route.is_websocket:
            endpoint = websocket_endpoint(route, binders[route.key], backends, websockets)
            routes.append(WebSocketRoute(route.path, endpoint, name=route.rpc))
            routes.append(Route(route.path, _upgrade_required(route), methods=["GET"]))
        elif route.is_download:
            download = download_endpoint(route, binders[route.key], backends)
            routes.append(Route(route.path, download, methods=["GET"], name=route.rpc))
        else:
            routes.append(
                Route(
                    route.path,
                    _http_endpoint(route, pipeline),
                    methods=[route.http_method],
                    name=route.rpc,
                )
            )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        opened = Backends.connect(settings, settings.gateway_deadline_seconds)
        backends.set(opened)
        logger.info("gateway: %d routes, backends %s", len(table), list(opened.channels))
        health.start()
        try:
            yield
        finally:
            await health.stop()
            await ready.aclose()
            backends.set(None)
            await opened.close(grace=settings.gateway_shutdown_grace_seconds)
            for close in on_shutdown:
                await close()
            exposition.process_exit()

    app = Starlette(
        routes=routes,
        exception_handlers={HTTPException: _http_exception, Exception: _unexpected},
        lifespan=lifespan,
        middleware=web_middleware(settings),
    )
    exposition.announce("gateway")
    app.state.route_table = table
    return app
