"""The metrics interceptor on a real grpc.aio server: codes and latency of every kind of call."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from prometheus_client import REGISTRY

from services import errors
from services.grpc_server.call_telemetry import CallTelemetry
from services.grpc_server.interceptors import ErrorInterceptor

SERVICE = "test.metrics.Probe"


def _count(method: str, code: str) -> float:
    labels = {"service": SERVICE, "method": method, "code": code}
    return REGISTRY.get_sample_value("linkpulse_grpc_requests_total", labels) or 0.0


def _observed(method: str) -> float:
    labels = {"service": SERVICE, "method": method}
    return REGISTRY.get_sample_value("linkpulse_grpc_request_duration_seconds_count", labels) or 0


async def _echo(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    if request == b"missing":
        raise errors.not_found("thing 1")  # translated by the error interceptor
    if request == b"abort":
        await context.abort(grpc.StatusCode.PERMISSION_DENIED, "no")
    return request


async def _many(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
    for _ in range(3):
        yield request
    if request == b"fail":
        raise ValueError("a bug")


def _handlers() -> grpc.GenericRpcHandler:
    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "Echo": grpc.unary_unary_rpc_method_handler(_echo),
            "Many": grpc.unary_stream_rpc_method_handler(_many),
        },
    )


@pytest.fixture
async def channel() -> AsyncIterator[grpc.aio.Channel]:
    server = grpc.aio.server(interceptors=[CallTelemetry(), ErrorInterceptor()])
    server.add_generic_rpc_handlers((_handlers(),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as opened:
        yield opened
    await server.stop(None)


async def _call(channel: grpc.aio.Channel, method: str, body: bytes) -> Any:
    return await channel.unary_unary(f"/{SERVICE}/{method}")(body)


async def test_unary_calls_are_counted_by_their_final_code(channel: grpc.aio.Channel) -> None:
    before = {c: _count("Echo", c) for c in ("OK", "NOT_FOUND", "PERMISSION_DENIED")}
    observed = _observed("Echo")
    assert await _call(channel, "Echo", b"hi") == b"hi"
    for body, code in ((b"missing", "NOT_FOUND"), (b"abort", "PERMISSION_DENIED")):
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await _call(channel, "Echo", body)
        assert failed.value.code().name == code
    assert _count("Echo", "OK") == before["OK"] + 1
    assert _count("Echo", "NOT_FOUND") == before["NOT_FOUND"] + 1
    assert _count("Echo", "PERMISSION_DENIED") == before["PERMISSION_DENIED"] + 1
    assert _observed("Echo") == observed + 3


async def test_streams_are_counted_when_they_end(channel: grpc.aio.Channel) -> None:
    ok, internal = _count("Many", "OK"), _count("Many", "INTERNAL")
    stream = channel.unary_stream(f"/{SERVICE}/Many")
    assert [item async for item in stream(b"x")] == [b"x"] * 3
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        async for _ in stream(b"fail"):
            pass
    assert failed.value.code() == grpc.StatusCode.INTERNAL
    assert _count("Many", "OK") == ok + 1
    assert _count("Many", "INTERNAL") == internal + 1


async def test_unknown_methods_make_no_series(channel: grpc.aio.Channel) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await _call(channel, "NoSuchMethod", b"")
    assert failed.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert (
        REGISTRY.get_sample_value(
            "linkpulse_grpc_requests_total",
            {"service": SERVICE, "method": "NoSuchMethod", "code": "UNIMPLEMENTED"},
        )
        is None
    )
