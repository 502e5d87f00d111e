"""Live-service restarts: WebSocket subscribers resume, IngestStream and StreamExport resent."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import grpc
import pytest
import websockets

from services import protos
from tests.chaos.conftest import DAY, Sender, Stack, Tenant, assert_exact, clicks

WS = "/api/analytics/live/ws"


async def _read_ids(
    url: str, t: Tenant, want: set[int], seconds: float = 60
) -> tuple[list[int], int, int]:
    """Event ids received until all of want are in, reconnecting with the last cursor; the
    reconnects and the error frames seen."""
    got: list[int] = []
    cursor = ""
    reconnects = -1
    errors = 0
    async with asyncio.timeout(seconds):
        while not want <= set(got):
            reconnects += 1
            query = f"?cursor={cursor}" if cursor else ""
            try:
                async with websockets.connect(url + query, additional_headers=t.headers) as feed:
                    while not want <= set(got):
                        frame = json.loads(await feed.recv())
                        if frame.get("type") == "heartbeat":
                            continue
                        if frame.get("success") is False:  # the envelope, then the close
                            assert frame["error"]["code"] == "unavailable", frame
                            errors += 1
                            break
                        got.append(int(frame["eventId"]))
                        cursor = frame["cursor"]
            except (websockets.ConnectionClosed, OSError, websockets.InvalidStatus):
                await asyncio.sleep(0.3)
    return got, reconnects, errors


@pytest.mark.fault("live", "SIGKILL + restart under WebSocket subscribers")
async def test_websocket_subscribers_resume_across_live_restart(
    healthy: Stack, tenant, note
) -> None:
    stack = healthy
    t = await tenant()
    url = stack.gateway_url.replace("http://", "ws://") + WS
    before = clicks(t, 30_000_000, 20)
    after = clicks(t, 30_000_100, 20)
    want = {e.event_id for e in before + after}
    reading = asyncio.create_task(_read_ids(url, t, want))
    await asyncio.sleep(0.5)  # subscribed
    sender = Sender(stack.settings.live_addr, t)
    await sender.send(before)
    await asyncio.sleep(0.5)
    stack.restart("live")
    await sender.send(after)
    got, reconnects, errors = await reading
    note(f"{errors} 'unavailable' error frame(s), {reconnects} reconnect(s) with the cursor")
    note(f"{len(got)} frames for {len(want)} events")
    assert sorted(got) == sorted(want), "lost or doubled across the restart"
    await assert_exact(stack, t, len(want), note)


@pytest.mark.fault("live", "SIGKILL mid-IngestStream, stream resent")
async def test_ingest_stream_resent_across_live_restart(healthy: Stack, tenant, note) -> None:
    stack = healthy
    t = await tenant()
    events = clicks(t, 31_000_000, 20_000)
    killed = asyncio.Event()

    async def slow() -> AsyncIterator[protos.live_pb2.ClickEvent]:
        for i, event in enumerate(events):
            if i == 8_000 and not killed.is_set():
                # Set first: the call may fail (and stop pulling events) while the kill runs.
                killed.set()
                await asyncio.to_thread(stack.kill, "live")
            yield event

    failed = ""
    async with grpc.aio.insecure_channel(stack.settings.live_addr) as channel:
        stub = protos.live_pb2_grpc.LiveServiceStub(channel)
        try:
            await stub.IngestStream(slow(), metadata=t.metadata, timeout=30)
        except grpc.aio.AioRpcError as exc:
            failed = exc.code().name
    assert killed.is_set() and failed, f"the stream outlived the kill (ended {failed or 'OK'})"
    stack.start("live")
    async with grpc.aio.insecure_channel(stack.settings.live_addr) as channel:
        stub = protos.live_pb2_grpc.LiveServiceStub(channel)
        reply = await stub.IngestStream(slow(), metadata=t.metadata, timeout=60)
    assert reply.accepted == len(events)
    note(f"first stream ended {failed}; whole stream resent: {reply.duplicates} duplicates")
    await assert_exact(stack, t, len(events), note)


@pytest.mark.fault("export", "SIGKILL mid-StreamExport, stream retried")
async def test_stream_export_retried_across_export_restart(healthy: Stack, tenant, note) -> None:
    stack = healthy
    t = await tenant()
    await Sender(stack.settings.live_addr, t).send_all(clicks(t, 32_000_000, 20_000), 5_000)
    await stack.drained()
    request = protos.export_pb2.ExportRequest(
        dataset="clicks", columns="event_id", query={"start": DAY, "end": DAY}
    )
    first: list[int] = []
    failed = ""
    async with grpc.aio.insecure_channel(stack.settings.export_addr) as channel:
        stub = protos.export_pb2_grpc.ExportServiceStub(channel)
        try:
            async for row in stub.StreamExport(request, metadata=t.metadata, timeout=60):
                first.append(int(dict(row.values)["event_id"]))
                if len(first) == 2_000:
                    await asyncio.to_thread(stack.kill, "export")
        except grpc.aio.AioRpcError as exc:
            failed = exc.code().name
    stack.start("export")
    async with grpc.aio.insecure_channel(stack.settings.export_addr) as channel:
        stub = protos.export_pb2_grpc.ExportServiceStub(channel)
        again = [
            int(dict(row.values)["event_id"])
            async for row in stub.StreamExport(request, metadata=t.metadata, timeout=60)
        ]
    note(f"first stream: {len(first)} rows then {failed or 'completed'}; retry {len(again)} rows")
    assert failed == "UNAVAILABLE" or len(first) == 20_000, failed
    assert sorted(again) == list(range(32_000_000, 32_020_000))
