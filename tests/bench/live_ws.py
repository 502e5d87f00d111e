"""Ingest-to-WebSocket latency: events sent at a steady rate through gRPC `Ingest`, received by
many WebSocket subscribers spread over workspaces; per delivery, receipt time minus the time
its Ingest call was sent (both on this process's clock)."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field

import asyncpg
import grpc
import orjson
import websockets

from services import protos
from services.admin.credentials import create_api_key
from services.config import Settings
from tests.bench.ingest import LINKS, Tenant, clicks, rebased, tenant
from tests.bench.progress import say
from tests.bench.timing import Samples


@dataclass(frozen=True)
class LatencyPlan:
    """Subscribers, workspaces, event rate and duration of one measurement."""

    workspaces: int = 20
    subscribers_per_workspace: int = 10
    events_per_second: int = 1000
    seconds: float = 10.0
    batch: int = 10

    @property
    def subscribers(self) -> int:
        """Subscribers in all."""
        return self.workspaces * self.subscribers_per_workspace


@dataclass
class LatencyResult:
    """What the subscribers received and how late."""

    plan: LatencyPlan
    sent: int = 0
    expected: int = 0
    latency: Samples = field(default_factory=Samples)
    # The producer's achieved rate (it falls behind when the machine is saturated).
    achieved_rate: float = 0.0

    @property
    def delivered(self) -> int:
        """Deliveries received in time."""
        return len(self.latency.values)


async def _subscriber(url: str, key: str, received: dict[int, float], ready: asyncio.Event) -> None:
    """Record the receipt time of every event pushed, until cancelled."""
    headers = {"Authorization": f"Bearer {key}"}
    async with websockets.connect(url, additional_headers=headers, max_queue=None) as socket:
        ready.set()
        async for frame in socket:
            at = time.perf_counter()
            event = orjson.loads(frame)
            if "eventId" in event:
                received[int(event["eventId"])] = at


async def measure(
    settings: Settings, pool: asyncpg.Pool, gateway_url: str, plan: LatencyPlan
) -> LatencyResult:
    """Subscribe, send at plan's rate for plan's seconds, then collect every delivery."""
    tenants: list[Tenant] = []
    readers: list[str] = []
    for n in range(plan.workspaces):
        made = await tenant(pool, f"ws{n}", links=5)
        reader = await create_api_key(pool, made.workspace_id, ["analytics:read"], name="bench")
        tenants.append(made)
        readers.append(reader["key"])
    url = gateway_url.replace("http://", "ws://") + "/api/analytics/live/ws"
    # per subscriber: event id -> receipt time
    inboxes: list[tuple[int, dict[int, float]]] = []
    tasks = []
    for index in range(len(tenants)):
        for _ in range(plan.subscribers_per_workspace):
            inbox: dict[int, float] = {}
            ready = asyncio.Event()
            inboxes.append((index, inbox))
            tasks.append(asyncio.create_task(_subscriber(url, readers[index], inbox, ready)))
            await asyncio.wait_for(ready.wait(), 30)
    await asyncio.sleep(1.0)  # every subscription has reached the feed
    say(f"live: {plan.subscribers} WebSocket subscribers on {plan.workspaces} workspaces")

    result = LatencyResult(plan)
    sent_at: list[dict[int, float]] = [{} for _ in tenants]
    # One request per workspace, built once; each send only renumbers its events.
    requests = []
    generated = clicks(plan.batch, range(1, LINKS + 1))
    for who in tenants:
        request = protos.live_pb2.IngestRequest(events=rebased(generated, who.link_ids))
        for event in request.events:
            event.timestamp = ""  # stamped at receipt: these are live events
        requests.append((request, (("authorization", f"Bearer {who.key}"),)))
    next_id = random.Random().randrange(1 << 40, 1 << 50)
    interval = plan.batch / plan.events_per_second
    async with grpc.aio.insecure_channel(settings.live_addr) as channel:
        stub = protos.live_pb2_grpc.LiveServiceStub(channel)
        began = time.perf_counter()
        calls = []
        tick = 0
        while (now := time.perf_counter()) - began < plan.seconds:
            index = tick % len(tenants)
            request, metadata = requests[index]
            for event in request.events:
                event.event_id = next_id
                sent_at[index][next_id] = now
                next_id += 1
            # A copy: the call serializes its request later, when its task runs.
            sent = protos.live_pb2.IngestRequest.FromString(request.SerializeToString())
            calls.append(asyncio.ensure_future(stub.Ingest(sent, metadata=metadata)))
            result.sent += plan.batch
            tick += 1
            delay = began + tick * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        await asyncio.gather(*calls)
        result.achieved_rate = result.sent / (time.perf_counter() - began)
    await asyncio.sleep(3.0)  # the last events reach every subscriber
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for index, inbox in inboxes:
        for event_id, at in sent_at[index].items():
            result.expected += 1
            received = inbox.get(event_id)
            if received is not None:
                result.latency.values.append((received - at) * 1000)
    return result
