"""Ingest throughput end to end (accepted → counted in ClickHouse) against a raw driver insert.

Each measurement writes the same generated clicks into a workspace of its own, so the count it
waits for is exact: the raw insert (clickhouse-driver, ready-made rows, blocks of the flusher's
batch size), gRPC `Ingest` (batches, several concurrent callers), REST `POST /api/track/batch`
(the same batches as JSON) and REST `POST /api/track/click` (one event a request, many concurrent
callers). The clock stops when ClickHouse counts them all.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import grpc
import orjson
from google.protobuf.json_format import MessageToDict

from services import protos
from services.admin.credentials import create_api_key
from services.admin.links import create_link
from services.admin.tenants import create_workspace
from services.config import Settings
from services.live import rows as encoded
from services.live.enrich import accept_clicks
from services.live.tables import CLICK_COLUMNS
from services.live.visitors import VisitorIds, visitor_key
from services.stores.clickhouse import ClickHouse, ClickHouseTarget
from tests.bench import http_load
from tests.bench.progress import say

LINKS = 50
AGENTS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/120.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_1) AppleWebKit/605.1.15 Version/17.1 Safari/605",
    "Googlebot/2.1 (+http://www.google.com/bot.html)",
)
# A third of the clicks name no country: ingestion finds it from the address.
COUNTRIES = ("US", "DE", "FR", "GB", "BR", "IN", "JP", "CA", "AU", "ES", "", "", "", "", "")
# First octets of public IPv4 ranges of every registry (ARIN, RIPE, AFRINIC, APNIC, LACNIC).
NETWORKS = (8, 23, 31, 41, 46, 58, 81, 88, 102, 151, 177, 185, 200, 203)
REFERRERS = ("https://news.example.com/a", "https://social.example.org/p/1", "")


@dataclass(frozen=True)
class Tenant:
    """A workspace of one measurement: its id, links and an events:write key."""

    workspace_id: int
    link_ids: tuple[int, ...]
    key: str


@dataclass(frozen=True)
class IngestResult:
    """One path's throughput."""

    path: str
    events: int
    seconds: float
    detail: str

    @property
    def rate(self) -> float:
        """Events per second, end to end."""
        return self.events / self.seconds if self.seconds else float("nan")


async def tenant(pool: asyncpg.Pool, label: str, links: int = LINKS) -> Tenant:
    """A fresh workspace with `links` links and a key that may ingest."""
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S%f")  # unique within a second too
    workspace = await create_workspace(pool, f"bench {label} {stamp}", plan="enterprise")
    made = []
    for n in range(links):
        link = await create_link(
            pool,
            workspace["id"],
            domain="bench.lp",
            slug=f"{label}-{stamp}-{n}",
            destination_url=f"https://example.com/{n}",
        )
        made.append(int(link["id"]))
    key = await create_api_key(pool, workspace["id"], ["events:write"], name="bench ingest")
    return Tenant(int(workspace["id"]), tuple(made), key["key"])


def clicks(count: int, link_ids: Sequence[int], seed: int = 7) -> list[protos.live_pb2.ClickEvent]:
    """count clicks spread over the last hour, links, agents, countries (or none), referrers and
    public addresses."""
    rng = random.Random(seed)
    start = datetime.now(UTC) - timedelta(hours=1)
    return [
        protos.live_pb2.ClickEvent(
            link_id=rng.choice(link_ids),
            timestamp=(start + timedelta(seconds=rng.random() * 3500)).isoformat(),
            country=rng.choice(COUNTRIES),
            user_agent=rng.choice(AGENTS),
            referrer_url=rng.choice(REFERRERS),
            ip=".".join(map(str, (rng.choice(NETWORKS), *rng.choices(range(1, 255), k=3)))),
        )
        for _ in range(count)
    ]


def rebased(
    events: Sequence[protos.live_pb2.ClickEvent], link_ids: Sequence[int]
) -> list[protos.live_pb2.ClickEvent]:
    """The same events on another tenant's links (link i → link i of the other tenant)."""
    first = min(e.link_id for e in events)
    moved = []
    for event in events:
        copy = protos.live_pb2.ClickEvent()
        copy.CopyFrom(event)
        copy.link_id = link_ids[(event.link_id - first) % len(link_ids)]
        moved.append(copy)
    return moved


async def counted(ch: ClickHouse, workspace_id: int) -> int:
    """Clicks ClickHouse holds for the workspace."""
    rows = await ch.fetch(
        "SELECT count() FROM clicks WHERE workspace_id = %(ws)s", {"ws": workspace_id}
    )
    return int(rows[0][0])


async def _until_counted(ch: ClickHouse, workspace_id: int, expected: int, within: float) -> None:
    deadline = time.monotonic() + within
    while (found := await counted(ch, workspace_id)) < expected:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {found:,} of {expected:,} clicks counted after {within} s")
        await asyncio.sleep(0.05)
    if found != expected:
        raise RuntimeError(f"{found:,} clicks counted, {expected:,} sent")


async def _timed(
    ch: ClickHouse, workspace_id: int, expected: int, send: Callable[[], Awaitable[None]]
) -> float:
    began = time.perf_counter()
    await send()
    await _until_counted(ch, workspace_id, expected, within=600)
    return time.perf_counter() - began


async def raw_insert(settings: Settings, ch: ClickHouse, who: Tenant, events: list) -> IngestResult:
    """Ready-made rows of the events inserted with clickhouse-driver, one block per batch."""
    accepted = accept_clicks(
        rebased(events, who.link_ids),
        workspace_id=who.workspace_id,
        destinations=dict.fromkeys(who.link_ids, "https://example.com/"),
        new_ids=iter(range(1, len(events) + 1)),
        now=datetime.now(UTC),
        visitors=VisitorIds(visitor_key(settings)),
    )
    rows = [encoded.decode("click", line) for line in accepted.rows]
    block = settings.flusher_batch_size
    client = ClickHouseTarget.from_url(settings.clickhouse_url).client()
    sql = f"INSERT INTO clicks ({', '.join(CLICK_COLUMNS)}) VALUES"

    def insert() -> None:
        for at in range(0, len(rows), block):
            client.execute(sql, rows[at : at + block])

    async def send() -> None:
        await asyncio.to_thread(insert)

    try:
        seconds = await _timed(ch, who.workspace_id, len(rows), send)
    finally:
        client.disconnect()
    return IngestResult("raw clickhouse-driver insert", len(rows), seconds, f"blocks of {block}")


async def grpc_ingest(
    settings: Settings, ch: ClickHouse, who: Tenant, events: list, batch: int, callers: int
) -> IngestResult:
    """The events through gRPC `Ingest` in batches, `callers` concurrent calls at a time."""
    mine = rebased(events, who.link_ids)
    # Requests ready-made, like the raw insert's rows: the clock times sending them.
    requests = [
        protos.live_pb2.IngestRequest(events=mine[at : at + batch])
        for at in range(0, len(mine), batch)
    ]
    metadata = (("authorization", f"Bearer {who.key}"),)
    async with grpc.aio.insecure_channel(settings.live_addr) as channel:
        stub = protos.live_pb2_grpc.LiveServiceStub(channel)
        queue: asyncio.Queue[protos.live_pb2.IngestRequest] = asyncio.Queue()
        for request in requests:
            queue.put_nowait(request)

        async def caller() -> None:
            while not queue.empty():
                await stub.Ingest(queue.get_nowait(), metadata=metadata)

        async def send() -> None:
            await asyncio.gather(*(caller() for _ in range(callers)))

        seconds = await _timed(ch, who.workspace_id, len(mine), send)
    return IngestResult(
        "gRPC Ingest", len(mine), seconds, f"batches of {batch}, {callers} concurrent calls"
    )


async def rest_batch_ingest(
    gateway_url: str, ch: ClickHouse, who: Tenant, events: list, batch: int, callers: int
) -> IngestResult:
    """The events through `POST /api/track/batch` in batches, `callers` connections at a time."""
    mine = [MessageToDict(e) for e in rebased(events, who.link_ids)]
    # Bodies ready-made, like gRPC's requests: the clock times sending them.
    bodies = [orjson.dumps({"events": mine[at : at + batch]}) for at in range(0, len(mine), batch)]
    headers = {"Authorization": f"Bearer {who.key}"}

    async def send() -> None:
        await http_load.post_all(gateway_url, "/api/track/batch", headers, bodies, callers)

    seconds = await _timed(ch, who.workspace_id, len(mine), send)
    return IngestResult(
        "REST POST /api/track/batch",
        len(mine),
        seconds,
        f"batches of {batch}, {callers} keep-alive connections",
    )


async def rest_ingest(
    gateway_url: str, ch: ClickHouse, who: Tenant, events: list, callers: int
) -> IngestResult:
    """The events through `POST /api/track/click`, one a request, on `callers` connections."""
    bodies = [
        orjson.dumps(MessageToDict(e, preserving_proto_field_name=False))
        for e in rebased(events, who.link_ids)
    ]
    headers = {"Authorization": f"Bearer {who.key}"}

    async def send() -> None:
        await http_load.post_all(gateway_url, "/api/track/click", headers, bodies, callers)

    seconds = await _timed(ch, who.workspace_id, len(bodies), send)
    return IngestResult(
        "REST POST /api/track/click",
        len(bodies),
        seconds,
        f"one event a request, {callers} keep-alive connections",
    )


def _best(results: list[IngestResult]) -> IngestResult:
    best = max(results, key=lambda r: r.rate)
    rates = ", ".join(f"{r.rate:,.0f}" for r in results)
    return IngestResult(best.path, best.events, best.seconds, f"{best.detail}; best of {rates}")


async def measure(
    settings: Settings,
    pool: asyncpg.Pool,
    ch: ClickHouse,
    gateway_url: str,
    *,
    events: int,
    rest_events: int,
    rounds: int = 3,
) -> list[IngestResult]:
    """Raw insert, gRPC, REST batches and REST single clicks over the same generated clicks, each
    into its own workspace. Raw, gRPC and REST batches alternate for `rounds` rounds
    (ClickHouse's background merges of one round weigh on the next whichever it is); each
    reports its best."""
    generated = clicks(events, range(1, LINKS + 1))
    raws, grpcs, batches = [], [], []
    for _ in range(rounds):
        raws.append(await raw_insert(settings, ch, await tenant(pool, "raw"), generated))
        say(f"ingest: raw insert {raws[-1].rate:,.0f} events/s")
        grpcs.append(
            await grpc_ingest(
                settings, ch, await tenant(pool, "grpc"), generated, batch=1000, callers=4
            )
        )
        say(f"ingest: gRPC {grpcs[-1].rate:,.0f} events/s")
        batches.append(
            await rest_batch_ingest(
                gateway_url, ch, await tenant(pool, "batch"), generated, batch=1000, callers=4
            )
        )
        say(f"ingest: REST batch {batches[-1].rate:,.0f} events/s")
    raw, via_grpc, via_batch = _best(raws), _best(grpcs), _best(batches)
    say(f"ingest: best gRPC {via_grpc.rate / raw.rate:.2f}× best raw")
    say(f"ingest: best REST batch {via_batch.rate / via_grpc.rate:.2f}× best gRPC")
    via_rest = await rest_ingest(
        gateway_url, ch, await tenant(pool, "rest"), generated[:rest_events], callers=64
    )
    say(f"ingest: REST {via_rest.rate:,.0f} events/s")
    return [raw, via_grpc, via_batch, via_rest]
