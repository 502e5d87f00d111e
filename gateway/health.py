"""Backend health through the standard gRPC health service (grpc.health.v1)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

SERVING = "SERVING"


async def check_service(channel: grpc.aio.Channel, service_name: str, deadline: float) -> str:
    """The status name of one backend: SERVING, NOT_SERVING, ... or the gRPC error code name."""
    stub = health_pb2_grpc.HealthStub(channel)
    try:
        try:
            reply = await stub.Check(
                health_pb2.HealthCheckRequest(service=service_name), timeout=deadline
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND:
                raise
            # The server does not report this service by name: ask for the server as a whole.
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=deadline)
    except grpc.aio.AioRpcError as exc:
        return str(exc.code().name)
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


async def check_backends(
    channels: Mapping[str, grpc.aio.Channel], service_names: Mapping[str, str], deadline: float
) -> dict[str, str]:
    """Status name of every backend, checked concurrently."""
    keys = list(channels)
    statuses = await asyncio.gather(
        *(check_service(channels[key], service_names[key], deadline) for key in keys)
    )
    return dict(zip(keys, statuses, strict=True))


def health_body(statuses: Mapping[str, str]) -> tuple[int, dict[str, object]]:
    """HTTP status (200 or 503) and the /healthz envelope of backend statuses."""
    healthy = all(status == SERVING for status in statuses.values())
    data = {"status": "ok" if healthy else "degraded", "services": dict(statuses)}
    return (200 if healthy else 503), {"success": True, "data": data}
