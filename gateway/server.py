"""Run the gateway under uvicorn."""

from __future__ import annotations

from typing import Any

import uvicorn

from gateway import accesslog
from gateway.app import create_app
from gateway.cache import SnapshotCache
from gateway.http_protocol import HTTP_PROTOCOL
from services.config import Settings


def uvicorn_config(settings: Settings, app: Any) -> uvicorn.Config:
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
    )


def serve(settings: Settings) -> None:
    """Serve the gateway on settings.gateway_host:gateway_port until SIGINT/SIGTERM (blocking)."""
    cache = SnapshotCache.from_settings(settings) if settings.snapshot_cache else None
    app = create_app(
        settings,
        wrap_pipeline=cache.wrap if cache else None,
        on_shutdown=(cache.aclose,) if cache else (),
    )
    server = uvicorn.Server(uvicorn_config(settings, app))
    accesslog.install()  # after uvicorn.Config has configured its loggers
    # uvicorn handles SIGTERM/SIGINT: stop accepting, finish open requests, run the lifespan
    # shutdown (which closes the gRPC channels).
    server.run()
