"""WebSocket flow control: a consumer too slow is cut off with 4008, others keep receiving;
heartbeats on quiet feeds. A fake grpc.aio LiveService streams fast over a real socket."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator

import grpc
import pytest
import pytest_asyncio
import websockets

from gateway.app import create_app
from gateway.websocket import HEARTBEAT_FRAME, TOO_SLOW_CLOSE, TOO_SLOW_REASON
from services import protos
from services.config import Settings
from tests.asgi_server import serving

SEND_QUEUE = 32
# Random, so per-message deflate cannot shrink the frames below the socket buffers.
PAYLOAD = os.urandom(2048).hex()


class FastLive(protos.live_pb2_grpc.LiveServiceServicer):
    """Subscribe: `flood` streams ~4 KB events at about 2,000/s until cancelled; `quiet` none."""

    def __init__(self) -> None:
        self.cancelled = 0
        self.ended = asyncio.Event()

    async def Subscribe(self, request, context):  # noqa: N802, ANN001
        try:
            if request.kind == "quiet":
                await asyncio.sleep(30)
                return
            for number in range(1_000_000):
                yield protos.live_pb2.LiveEvent(event_id=number, kind="click", city=PAYLOAD)
                if number % 20 == 19:
                    await asyncio.sleep(0.01)
        finally:
            self.cancelled += 1
            self.ended.set()


async def _serve_gateway(backend: str) -> AsyncIterator[str]:
    settings = Settings(
        query_addr=backend,
        live_addr=backend,
        export_addr=backend,
        gateway_deadline_seconds=1.0,
        gateway_shutdown_grace_seconds=1.0,
        gateway_ws_send_queue=SEND_QUEUE,
        gateway_ws_heartbeat_seconds=0.3,
    )
    app = create_app(settings)
    async with serving(app) as port:
        yield f"ws://127.0.0.1:{port}/api/analytics/live/ws"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def live() -> AsyncIterator[tuple[str, FastLive]]:
    """URL of the live WebSocket of a gateway in front of FastLive."""
    service = FastLive()
    server = grpc.aio.server()
    protos.live_pb2_grpc.add_LiveServiceServicer_to_server(service, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async for url in _serve_gateway(f"127.0.0.1:{port}"):
        yield url, service
    await server.stop(grace=None)


async def _read_for(socket_: websockets.ClientConnection, seconds: float) -> int:
    """Frames read in seconds, heartbeats left out."""
    count = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while (left := deadline - loop.time()) > 0:
        try:
            frame = await asyncio.wait_for(socket_.recv(), left)
        except TimeoutError:
            break
        if frame != HEARTBEAT_FRAME:
            count += 1
    return count


async def test_slow_consumer_is_cut_off_while_another_keeps_receiving(live) -> None:
    url, service = live
    before = service.cancelled
    service.ended.clear()
    fast = await websockets.connect(f"{url}?token=lpl_t", compression=None, max_size=None)
    # max_queue=1 and no reading: the slow client stops draining its TCP socket at once
    slow = await websockets.connect(
        f"{url}?token=lpl_t", compression=None, max_queue=1, max_size=None
    )
    try:
        # the slow client's buffers and send queue fill within seconds
        received = await _read_for(fast, 3.0)
        assert received > 1000
        drained = 0
        with pytest.raises(websockets.ConnectionClosedError) as closed:
            async with asyncio.timeout(20):
                while True:
                    await slow.recv()
                    drained += 1
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == TOO_SLOW_CLOSE
        assert closed.value.rcvd.reason == TOO_SLOW_REASON
        # far fewer than the fast one got: frames stop at the queue bound + socket buffers
        assert drained < received
        # the cut-off consumer's stream is cancelled; the fast one still streams
        await asyncio.wait_for(service.ended.wait(), 5)
        assert service.cancelled == before + 1
        assert await _read_for(fast, 1.0) > 100
    finally:
        await fast.close()
        await slow.close()


async def test_heartbeats_on_a_quiet_feed(live) -> None:
    url, _ = live
    async with websockets.connect(
        f"{url}?kind=quiet", additional_headers={"Authorization": "Bearer k"}
    ) as quiet:
        frames = [await asyncio.wait_for(quiet.recv(), 2) for _ in range(2)]
    assert [json.loads(f) for f in frames] == [{"type": "heartbeat"}] * 2
