"""Run the gateway under uvicorn: in this process, or as GATEWAY_WORKERS processes sharing the
port (the gateway is stateless, so every copy answers alike)."""

from __future__ import annotations

from typing import Any

import uvicorn
from starlette.applications import Starlette
from uvicorn.supervisors import Multiprocess

from gateway.app import create_app
from gateway.cache import SnapshotCache
from gateway.http_protocol import HTTP_PROTOCOL
from services.config import Settings, load
from services.telemetry import exposition, logs, tracing

# What each worker process imports and calls to build its app (settings from its environment).
WORKER_APP = "gateway.server:worker_app"


def uvicorn_config(settings: Settings, app: Any, **extra: Any) -> uvicorn.Config:
    """uvicorn's configuration of the gateway serving app."""
    return uvicorn.Config(
        app,
        host=settings.gateway_host,
        port=settings.gateway_port,
        lifespan="on",
        # An unparseable request is answered in the error envelope, not uvicorn's plain text.
        http=HTTP_PROTOCOL,
        # Only loopback proxies may set the client address through X-Forwarded-For.
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1",
        timeout_graceful_shutdown=int(settings.gateway_shutdown_grace_seconds),
        server_header=False,
        # Logging is ours (services.telemetry.logs): uvicorn's loggers reach our handler, and
        # gateway.request_telemetry writes the access log.
        log_config=None,
        access_log=False,
        **extra,
    )


def build_app(settings: Settings) -> Starlette:
    """The gateway app with its snapshot cache (unless SNAPSHOT_CACHE=off)."""
    cache = SnapshotCache.from_settings(settings) if settings.snapshot_cache else None
    return create_app(
        settings,
        wrap_pipeline=cache.wrap if cache else None,
        on_shutdown=(cache.aclose,) if cache else (),
    )


def worker_app() -> Starlette:
    """The app of one worker process, configured from the environment."""
    settings = load()
    logs.configure("gateway", settings)
    tracing.configure("gateway", settings)
    return build_app(settings)


def serve(settings: Settings) -> None:
    """Serve the gateway on settings.gateway_host:gateway_port until SIGINT/SIGTERM (blocking)."""
    # uvicorn handles SIGTERM/SIGINT: stop accepting, finish open requests, run the lifespan
    # shutdown (which closes the gRPC channels); with workers its supervisor stops each one.
    exposition.share_between_processes(settings, "gateway", settings.gateway_workers)
    if settings.gateway_workers > 1:
        config = uvicorn_config(
            settings, WORKER_APP, factory=True, workers=settings.gateway_workers
        )
        Multiprocess(config, sockets=[config.bind_socket()]).run()
        return
    uvicorn.Server(uvicorn_config(settings, build_app(settings))).run()
