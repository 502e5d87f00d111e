"""Running one gRPC service: stores, interceptors, health, reflection, graceful shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import signal

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from services.auditlog.denials import DenialRecorder
from services.auth import signing
from services.auth.ratelimit import RateLimiter
from services.auth.resolver import TokenResolver
from services.config import Settings
from services.contract.compiled import contract
from services.grpc_server import metadata_limits, readiness, tls
from services.grpc_server.call_telemetry import CallTelemetry
from services.grpc_server.interceptors import AuthInterceptor, ErrorInterceptor
from services.protos import SERVICES
from services.stores.deps import Deps
from services.telemetry import tracing

log = logging.getLogger("linkpulse.server")

MAX_MESSAGE_BYTES = 32 * 1024 * 1024
GRACE_SECONDS = 10.0


def build_server(deps: Deps) -> grpc.aio.Server:
    """A grpc.aio server with the shared interceptors: log fields and metrics outermost, the
    trace's (when tracing is on), errors, then auth (which adds the caller's workspace to the
    log fields)."""
    resolver = TokenResolver(
        deps.pg, ttl=deps.settings.auth_cache_seconds, signer=signing.signer(deps.settings)
    )
    auth = AuthInterceptor(
        resolver,
        contract().policies,
        on_denied=DenialRecorder(deps.pg),
        limiter=RateLimiter(
            deps.redis,
            prefix=deps.settings.ingest_key_prefix,
            partitions=deps.settings.ingest_partitions,
        ),
    )
    return grpc.aio.server(
        interceptors=[CallTelemetry(), *tracing.server_interceptors(), ErrorInterceptor(), auth],
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_metadata_size", metadata_limits.TRANSPORT_MAX_BYTES),
            ("grpc.absolute_max_metadata_size", metadata_limits.TRANSPORT_MAX_BYTES),
        ],
    )


async def run(name: str, settings: Settings) -> None:
    """Serve one of SERVICES on its configured address until SIGTERM or SIGINT."""
    if name not in SERVICES:
        raise ValueError(f"unknown service {name!r}; expected one of {', '.join(SERVICES)}")
    address = settings.grpc_listen(name)
    credentials = tls.server_credentials(settings)
    deps = await Deps.open(settings)
    server = build_server(deps)
    module = importlib.import_module(f"services.{name}.servicer")
    # A service may hold something for its life (live: its event-id node lease), handed to its
    # servicer and let go after the server stopped.
    held = contextlib.AsyncExitStack()
    hold = getattr(module, "hold", None)
    holdings = await hold(deps, held) if hold is not None else {}
    full_name = module.register(server, deps, **holdings)
    # A service may check its stores before serving (live: Redis persistence); a refusal raises.
    on_start = getattr(module, "on_start", None)
    checking = await on_start(deps) if on_start is not None else None
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (
            full_name,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ),
        server,
    )
    if credentials is None:
        server.add_insecure_port(address)
    else:
        server.add_secure_port(address, credentials)
    # "" and full_name answer readiness (checked before the port opens, then in the background).
    ready = readiness.reporter(name, full_name, deps, health_servicer, holdings)
    await ready.start()
    await server.start()
    log.info("%s serving on %s%s", full_name, address, "" if credentials is None else " (TLS)")

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("%s stopping", full_name)
    await ready.stop()
    for service in (full_name, ""):
        await health_servicer.set(service, health_pb2.HealthCheckResponse.NOT_SERVING)
    if checking is not None:
        checking.cancel()
    await server.stop(GRACE_SECONDS)
    await held.aclose()
    await deps.close()
