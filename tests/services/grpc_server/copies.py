"""Throw-away gRPC servers standing for copies of a service: the standard health service, and
a count of the calls each copy received."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc


class _Counting(grpc.aio.ServerInterceptor):
    def __init__(self, copy: Copy) -> None:
        self._copy = copy

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        self._copy.calls += 1
        return await continuation(handler_call_details)


@dataclass
class Copy:
    """One running copy: its address and how many calls it received."""

    server: grpc.aio.Server | None = None
    address: str = ""
    calls: int = 0
    health: Any = field(default=None)

    async def stop(self) -> None:
        """Stop serving at once (connections closed)."""
        if self.server is not None:
            await self.server.stop(None)
            self.server = None


async def start_copy(credentials: grpc.ServerCredentials | None = None) -> Copy:
    """A health-serving gRPC server on a free loopback port (TLS with credentials)."""
    copy = Copy()
    server = grpc.aio.server(interceptors=[_Counting(copy)])
    copy.health = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(copy.health, server)
    if credentials is None:
        port = server.add_insecure_port("127.0.0.1:0")
    else:
        port = server.add_secure_port("127.0.0.1:0", credentials)
    await server.start()
    await copy.health.set("", health_pb2.HealthCheckResponse.SERVING)
    copy.server, copy.address = server, f"127.0.0.1:{port}"
    return copy


async def check(channel: grpc.aio.Channel) -> str:
    """The server-wide health status name through channel (raises on a failed call)."""
    reply = await health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service=""), timeout=5
    )
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))
