"""Clients that time out and resend the same events: each counted once."""

from __future__ import annotations

import grpc
import httpx
import pytest

from services import protos
from tests.chaos.conftest import Sender, Stack, assert_exact, clicks


@pytest.mark.fault("live (client)", "gRPC Ingest deadline exceeded, resent")
async def test_grpc_resend_after_client_timeouts(healthy: Stack, tenant, note) -> None:
    stack = healthy
    t = await tenant()
    events = clicks(t, 8_000_000, 10_000)
    timed_out = 0
    async with grpc.aio.insecure_channel(stack.settings.live_addr) as channel:
        stub = protos.live_pb2_grpc.LiveServiceStub(channel)
        for i in range(0, len(events), 1_000):
            request = protos.live_pb2.IngestRequest(events=events[i : i + 1_000])
            try:  # so short a deadline that the client gives up, the server maybe not
                await stub.Ingest(request, metadata=t.metadata, timeout=0.005)
            except grpc.aio.AioRpcError as exc:
                assert exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED, exc
                timed_out += 1
    sender = Sender(stack.settings.live_addr, t)
    await sender.send_all(events, per_request=1_000)  # every batch again
    note(f"{timed_out} of 10 requests timed out, all 10 resent")
    await assert_exact(stack, t, len(events), note)


@pytest.mark.fault("gateway (client)", "REST track timed out, resent")
async def test_rest_resend_after_client_timeouts(healthy: Stack, tenant, note) -> None:
    stack = healthy
    t = await tenant()
    timed_out = 0
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=0.002) as hasty:
        for i in range(200):
            body = {"linkId": t.link_ids[0], "eventId": 8_500_000 + i}
            try:
                await hasty.post("/api/track/click", json=body, headers=t.headers)
            except httpx.TimeoutException:
                timed_out += 1
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=15) as http:
        for i in range(200):
            body = {"linkId": t.link_ids[0], "eventId": 8_500_000 + i}
            r = await http.post("/api/track/click", json=body, headers=t.headers)
            assert r.status_code == 200, r.text
    note(f"{timed_out} of 200 timed out, all 200 resent")
    await assert_exact(stack, t, 200, note)
