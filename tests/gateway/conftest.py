"""Fixtures of the gateway tests: a real grpc.aio backend and the gateway under uvicorn."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest_asyncio

from services import codegen

if not codegen.DESCRIPTOR_SET.exists():  # a fresh clone: compile the protos first
    codegen.generate()

import grpc  # noqa: E402
from google.api import httpbody_pb2  # noqa: E402
from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: E402
from grpc_health.v1.health import aio as health_aio  # noqa: E402

from gateway.app import create_app  # noqa: E402
from services import errors, protos  # noqa: E402
from services.config import Settings  # noqa: E402
from tests.asgi_server import serving  # noqa: E402
from tests.ports import free_port  # noqa: E402

BIG = 2**53 + 7  # not exactly representable as a double: must reach clients as an exact number


@dataclass
class Recorder:
    """What the fake services saw."""

    metadata: dict[str, list[tuple[str, Any]]] = field(default_factory=dict)
    requests: dict[str, Any] = field(default_factory=dict)
    stream_cancelled: asyncio.Event = field(default_factory=asyncio.Event)

    def see(self, rpc: str, request: Any, context: grpc.aio.ServicerContext) -> None:
        self.metadata[rpc] = list(context.invocation_metadata() or ())
        self.requests[rpc] = request


class FakeQuery(protos.query_pb2_grpc.QueryServiceServicer):
    """A few QueryService methods; the rest stay UNIMPLEMENTED."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    async def GetWorkspaceOverview(self, request, context):  # noqa: N802
        self.recorder.see("GetWorkspaceOverview", request, context)
        return protos.common_pb2.OverviewResponse(
            totals=protos.common_pb2.Totals(clicks=BIG, unique_visitors=3, revenue=12.5),
            meta=protos.common_pb2.ResponseMeta(
                timezone=request.timezone or "UTC", notices=["capped"]
            ),
        )

    async def GetLinkSummary(self, request, context):  # noqa: N802
        self.recorder.see("GetLinkSummary", request, context)
        return protos.common_pb2.OverviewResponse(
            totals=protos.common_pb2.Totals(clicks=request.link_id)
        )

    async def GetWorkspaceTimeseries(self, request, context):  # noqa: N802
        error = errors.ApiError(
            grpc.StatusCode.INVALID_ARGUMENT, "invalid_days", "days must be at most 90", "days"
        )
        await errors.abort(context, error)

    async def GetWorkspaceUsage(self, request, context):  # noqa: N802
        await context.abort(grpc.StatusCode.PERMISSION_DENIED, "missing scope analytics:read")

    async def GetOverview(self, request, context):  # noqa: N802
        raise RuntimeError("secret internal detail")

    async def GetWorkspaceRegions(self, request, context):  # noqa: N802
        await asyncio.sleep(2)
        return protos.common_pb2.BreakdownResponse()

    async def GetRawEvents(self, request, context):  # noqa: N802
        self.recorder.see("GetRawEvents", request, context)
        event = protos.query_pb2.RawClickEvent(
            id=7301, workspace_id=request.workspace_id, url_id=request.url_id, url_slug="s"
        )
        return protos.query_pb2.RawEventsResponse(data=[event])


class FakeLive(protos.live_pb2_grpc.LiveServiceServicer):
    """Subscribe: three events, an error after one, or events until cancelled."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    async def Subscribe(self, request, context):  # noqa: N802
        self.recorder.see("Subscribe", request, context)
        if not dict(context.invocation_metadata() or ()).get("authorization"):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing bearer token")
        if request.kind == "fail":
            yield protos.live_pb2.LiveEvent(event_id=1, kind="click")
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, "feed closed")
        if request.kind == "forever":
            try:
                for number in range(10_000):
                    yield protos.live_pb2.LiveEvent(event_id=number, kind="click")
                    await asyncio.sleep(0.02)
            finally:
                self.recorder.stream_cancelled.set()
            return
        for number in range(3):
            yield protos.live_pb2.LiveEvent(event_id=BIG + number, kind="click", link_id=5)


class FakeExport(protos.export_pb2_grpc.ExportServiceServicer):
    """Export answers a CSV body with status 202 in its initial metadata."""

    async def Export(self, request, context):  # noqa: N802
        await context.send_initial_metadata((("x-http-status", "202"),))
        return httpbody_pb2.HttpBody(content_type="text/csv", data=b"day,clicks\n2025-01-01,4\n")


@dataclass
class Backend:
    """The running fake backend."""

    address: str
    recorder: Recorder
    big: int = BIG


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def backend() -> AsyncIterator[Backend]:
    """One grpc.aio server with the fake query, live and export services and health."""
    recorder = Recorder()
    server = grpc.aio.server()
    protos.query_pb2_grpc.add_QueryServiceServicer_to_server(FakeQuery(recorder), server)
    protos.live_pb2_grpc.add_LiveServiceServicer_to_server(FakeLive(recorder), server)
    protos.export_pb2_grpc.add_ExportServiceServicer_to_server(FakeExport(), server)
    health = health_aio.HealthServicer()
    await health.set("linkpulse.v1.QueryService", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield Backend(address=f"127.0.0.1:{port}", recorder=recorder)
    await server.stop(grace=None)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def gateway_url(backend: Backend) -> AsyncIterator[str]:
    """Base URL of the gateway under uvicorn; the audit service address is unreachable."""
    settings = Settings(
        query_addr=backend.address,
        live_addr=backend.address,
        export_addr=backend.address,
        audit_addr=f"127.0.0.1:{free_port()}",
        gateway_deadline_seconds=1.0,
        gateway_max_body_bytes=1 << 20,
        gateway_health_timeout_seconds=1.0,
        gateway_shutdown_grace_seconds=1.0,
    )
    app = create_app(settings)
    async with serving(app) as port:
        yield f"http://127.0.0.1:{port}"
