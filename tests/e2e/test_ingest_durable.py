"""Durable ingestion end to end: stream, flusher, ClickHouse, routes; crashes and outages.

The crash and outage tests run their own live service and flusher (and, for the outage, their
own ClickHouse server) on a stream of their own, so the suite's processes are left alone.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import grpc
import httpx
import pytest
from redis.asyncio import Redis

from services import protos
from services.auth import signing
from services.config import Settings
from services.devstack import clickhouse_server as devstack_clickhouse
from services.devstack import components, processes
from services.grpc_server.channels import open_channel
from services.live.stream import Keys, click_slot
from services.stores.clickhouse import ClickHouse
from services.stores.migrate import migrate
from tests import ingest_streams
from tests.conftest import wait_drained
from tests.ports import free_port
from tests.services.devstack.helpers import isolated_settings, process_env

UA_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)
OVERVIEW = "/api/analytics/workspace/overview"
DAY = {"start": "2026-11-02", "end": "2026-11-02", "timezone": "UTC"}


def _clicks(link_ids: list[int], n: int, start: int = 0) -> list[protos.live_pb2.ClickEvent]:
    return [
        protos.live_pb2.ClickEvent(
            link_id=link_ids[i % len(link_ids)],
            timestamp=f"2026-11-02T{(i // 60) % 24:02d}:{i % 60:02d}:00Z",
            visitor_id=f"v{i % 97}",
            country="DE",
        )
        for i in range(start, start + n)
    ]


async def _count(ch: ClickHouse, table: str, workspace_id: int) -> int:
    rows = await ch.fetch(
        f"SELECT count() FROM {table} WHERE workspace_id = %(w)s", {"w": workspace_id}
    )
    return int(rows[0][0])


async def _until(what: str, check, seconds: float = 60.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


# -- through the suite's services -------------------------------------------------------------


async def test_rest_grpc_and_streaming_ingest_reach_clickhouse_and_routes(system, http, ch, tenant):
    t = await tenant()
    r = await http.post(
        "/api/track/click",
        json={"linkId": t.link_ids[0], "timestamp": "2026-11-02T08:00:00Z", "userAgent": UA_IPHONE},
        headers=t.headers,
    )
    assert r.status_code == 200, r.text
    async with system.channel("live") as channel:
        stub = protos.live_pb2_grpc.LiveServiceStub(channel)
        batch = await stub.Ingest(
            protos.live_pb2.IngestRequest(events=_clicks(t.link_ids, 300)), metadata=t.metadata
        )
        assert batch.accepted == 300 and len(set(batch.event_ids)) == 300

        async def many() -> AsyncIterator[protos.live_pb2.ClickEvent]:
            for event in _clicks(t.link_ids, 12_000, start=300):  # more than one chunk
                yield event

        streamed = await stub.IngestStream(many(), metadata=t.metadata)
        assert streamed.accepted == 12_000 and len(set(streamed.event_ids)) == 12_000
    await system.drained()
    assert await _count(ch, "clicks", t.workspace_id) == 12_301
    got = (await http.get(OVERVIEW, params=DAY, headers=t.headers)).json()["data"]
    assert got["totals"]["clicks"] == 12_301


async def test_duplicate_event_ids_are_counted_once(system, http, ch, tenant):
    t = await tenant()
    other = await tenant()
    body = {"linkId": t.link_ids[0], "timestamp": "2026-11-02T09:00:00Z", "eventId": 424242}
    first = await http.post("/api/track/click", json=body, headers=t.headers)
    again = await http.post("/api/track/click", json=body, headers=t.headers)
    assert first.status_code == again.status_code == 200, again.text
    assert first.json()["data"]["eventIds"] == again.json()["data"]["eventIds"] == [424242]
    assert again.json()["data"]["duplicates"] == 1
    # The same id in another workspace is another event.
    theirs = {**body, "linkId": other.link_ids[0]}
    assert (await http.post("/api/track/click", json=theirs, headers=other.headers)).is_success
    async with system.channel("live") as channel:
        reply = await protos.live_pb2_grpc.LiveServiceStub(channel).Ingest(
            protos.live_pb2.IngestRequest(
                events=[
                    protos.live_pb2.ClickEvent(link_id=t.link_ids[1], event_id=7),
                    protos.live_pb2.ClickEvent(link_id=t.link_ids[1], event_id=7),
                    protos.live_pb2.ClickEvent(link_id=t.link_ids[1], event_id=424242),
                ]
            ),
            metadata=t.metadata,
        )
    assert reply.accepted == 3 and reply.duplicates == 2
    await system.drained()
    assert await _count(ch, "clicks", t.workspace_id) == 2
    assert await _count(ch, "clicks", other.workspace_id) == 1


async def test_leads_and_sales_are_attributed_to_their_click(system, http, ch, tenant, settings):
    t = await tenant()
    other = await tenant()
    link = t.link_ids[1]
    click = await http.post(
        "/api/track/click",
        json={
            "linkId": link,
            "timestamp": "2026-11-02T10:00:00Z",
            "country": "FR",
            "city": "Paris",
            "userAgent": UA_IPHONE,
            "visitorId": "visitor-1",
        },
        headers=t.headers,
    )
    click_id = click.json()["data"]["eventIds"][0]
    lead = await http.post(
        "/api/track/lead",
        json={
            "clickId": click_id,
            "customerId": "cus_1",
            "eventName": "Sign up",
            "timestamp": "2026-11-02T11:00:00Z",
        },
        headers=t.headers,
    )
    assert lead.status_code == 200, lead.text
    by_customer = await http.post(
        "/api/track/sale",
        json={
            "customerId": "cus_1",
            "amount": 1999,
            "currency": "eur",
            "invoiceId": "in_1",
            "timestamp": "2026-11-02T12:00:00Z",
        },
        headers=t.headers,
    )
    assert by_customer.status_code == 200, by_customer.text
    # An older click, known only to ClickHouse (its Redis entry gone): still found.
    keys = Keys(settings.ingest_key_prefix, settings.ingest_partitions)
    cached = keys.click_rows(t.workspace_id, click_slot(click_id))
    assert await Redis.from_url(settings.redis_url).delete(cached) == 1
    by_click = await http.post(
        "/api/track/sale",
        json={
            "clickId": click_id,
            "amount": 500,
            "currency": "USD",
            "timestamp": "2026-11-02T13:00:00Z",
        },
        headers=t.headers,
    )
    assert by_click.status_code == 200, by_click.text

    rows = await ch.fetch(
        "SELECT link_id, click_id, country, city, device, os, visitor_id, customer_id, currency,"
        " amount FROM sales WHERE workspace_id = %(w)s ORDER BY amount",
        {"w": t.workspace_id},
    )
    assert rows == [
        (link, click_id, "FR", "Paris", "mobile", "iOS", "visitor-1", "", "USD", 500),
        (link, click_id, "FR", "Paris", "mobile", "iOS", "visitor-1", "cus_1", "EUR", 1999),
    ]
    leads = await ch.fetch(
        "SELECT link_id, click_id, country, event_name FROM leads WHERE workspace_id = %(w)s",
        {"w": t.workspace_id},
    )
    assert leads == [(link, click_id, "FR", "Sign up")]
    got = (await http.get(OVERVIEW, params=DAY, headers=t.headers)).json()["data"]["totals"]
    assert (got["clicks"], got["leads"], got["sales"]) == (1, 1, 2)

    # A click of another workspace, an unknown click or customer: 404; bad fields: 400.
    cases = [
        ("lead", {"clickId": click_id, "customerId": "x"}, other, 404, "click_id"),
        ("lead", {"clickId": 123456789, "customerId": "x"}, t, 404, "click_id"),
        ("lead", {"clickId": click_id}, t, 400, "customer_id"),
        ("sale", {"customerId": "nobody", "amount": 1, "currency": "USD"}, t, 404, "customer_id"),
        ("sale", {"clickId": click_id, "amount": 1, "currency": "XYZ"}, t, 400, "currency"),
        ("sale", {"clickId": click_id, "amount": -1, "currency": "USD"}, t, 400, "amount"),
        ("sale", {"amount": 1, "currency": "USD"}, t, 400, "click_id"),
    ]
    for kind, body, who, status, field in cases:
        r = await http.post(f"/api/track/{kind}", json=body, headers=who.headers)
        assert r.status_code == status, (kind, body, r.text)
        assert r.json()["error"].get("field") == field, (kind, body, r.text)


async def test_ingest_validation_errors(system, http, tenant):
    t = await tenant()
    other = await tenant()
    cases = [
        ({"linkId": other.link_ids[0]}, 404, "not found"),
        ({"linkId": t.link_ids[0], "timestamp": "2999-01-01T00:00:00Z"}, 400, "future"),
        ({"linkId": t.link_ids[0], "eventId": -3}, 400, "event_id"),
        ({"linkId": t.link_ids[0], "referrer": "x" * 3000}, 400, "referrer"),
    ]
    for body, status, word in cases:
        r = await http.post("/api/track/click", json=body, headers=t.headers)
        assert r.status_code == status, (body, r.text)
        assert word in r.text, (body, r.text)
    async with system.channel("live") as channel:
        stub = protos.live_pb2_grpc.LiveServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as oversize:
            await stub.Ingest(
                protos.live_pb2.IngestRequest(events=_clicks(t.link_ids, 5001)), metadata=t.metadata
            )
        assert oversize.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        bad = _clicks(t.link_ids, 3)
        bad[2].country = "Germany"
        with pytest.raises(grpc.aio.AioRpcError) as named:
            await stub.Ingest(protos.live_pb2.IngestRequest(events=bad), metadata=t.metadata)
        assert named.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "events[2].country" in (named.value.details() or "")
        # Bytes that are no IngestRequest at all: a clear error on `events`, nothing taken.
        raw = channel.unary_unary("/linkpulse.v1.LiveService/Ingest")
        with pytest.raises(grpc.aio.AioRpcError) as garbled:
            await raw(b"\x0a\x10\x08\x01", metadata=t.metadata)
        assert garbled.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "IngestRequest" in (garbled.value.details() or "")


# -- own processes ----------------------------------------------------------------------------


def _env(settings: Settings, **extra: str) -> dict[str, str]:
    prompt = {
        "FLUSHER_MAX_WAIT_MS": "50",
        "FLUSHER_CLAIM_IDLE_MS": "500",
        "FLUSHER_BACKOFF_MAX_MS": "500",
        "SNAPSHOT_TTL_SECONDS": "0",
        "AUTH_CACHE_SECONDS": "1",
    }
    return process_env(settings, **{**prompt, **extra})


@dataclass
class Own:
    """Processes a test starts on its own settings; stopped (or killed) by the test."""

    settings: Settings
    specs: list[processes.ProcessSpec]
    # The suite's signing secret: these processes are of its deployment (tokens, visitor ids).
    secret: str

    def start(self, name: str, label: str | None = None, **env: str) -> processes.ProcessSpec:
        """Start `linkpulse serve name` as label (default name) with extra env."""
        spec = components.serve_spec(
            self.settings,
            name,
            label or name,
            components.probe(self.settings, name),
            _env(self.settings, SIGNING_KEY=self.secret, **env),
        )
        processes.start(spec)
        self.specs.append(spec)
        return spec


@pytest.fixture
def own(system, tmp_path: Path) -> Iterator[Own]:
    tag = f"{os.getpid()}-{time.monotonic_ns()}"
    settings = replace(
        system.settings,
        live_addr=f"127.0.0.1:{free_port()}",
        gateway_port=free_port(),
        run_dir=tmp_path / "run",
        ingest_stream=f"lp:ingest:own:{tag}",
        ingest_key_prefix=f"lp:own:{tag}",
    )
    mine = Own(settings, [], signing.load_secret(system.settings).decode())
    try:
        yield mine
    finally:
        for spec in reversed(mine.specs):
            processes.stop(spec)


async def _ingest(
    settings: Settings,
    t,  # noqa: ANN001
    events: list[protos.live_pb2.ClickEvent],
    per_request: int = 2500,
) -> None:
    async with grpc.aio.insecure_channel(settings.live_addr) as channel:
        stub = protos.live_pb2_grpc.LiveServiceStub(channel)
        for i in range(0, len(events), per_request):
            part = events[i : i + per_request]
            reply = await stub.Ingest(
                protos.live_pb2.IngestRequest(events=part), metadata=t.metadata
            )
            assert reply.accepted == len(part)


async def _pending(settings: Settings) -> int:
    redis = Redis.from_url(settings.redis_url)
    try:
        return await ingest_streams.pending(redis, settings)
    finally:
        await redis.aclose()


async def test_flusher_killed_between_insert_and_ack_counts_exactly_once(own, ch, tenant):
    t = await tenant()
    own.start("live", "own-live")
    # Pauses a long time after inserting its first batch, before acknowledging it.
    stuck = own.start(
        "flusher",
        "own-flusher-a",
        FLUSHER_BATCH_SIZE="2000",
        FLUSHER_PAUSE_AFTER_INSERT_MS="600000",
    )
    events = _clicks(t.link_ids, 5000)
    await _ingest(own.settings, t, events[:500])

    async def first_batch_inserted() -> bool:
        return await _count(ch, "clicks", t.workspace_id) >= 500

    await _until("the first batch insert", first_batch_inserted)
    await _ingest(own.settings, t, events[500:], per_request=500)
    assert await _count(ch, "clicks", t.workspace_id) == 500
    assert await _pending(own.settings) == 1  # inserted, never acknowledged
    pid = processes.running_pid(stuck)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    await asyncio.sleep(0.5)  # SIGKILL is not deferred; the zombie is no consumer

    own.start("flusher", "own-flusher-b", FLUSHER_BATCH_SIZE="700")
    await wait_drained(own.settings, 60)
    assert await _count(ch, "clicks", t.workspace_id) == 5000
    assert await _pending(own.settings) == 0


def _varied_clicks(link_ids: list[int], first_id: int) -> list[protos.live_pb2.ClickEvent]:
    """Clicks with client ids from first_id that use what enrichment fills in or derives."""
    agents = (UA_IPHONE, "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0", "curl/8.0", "")
    return [
        protos.live_pb2.ClickEvent(
            event_id=first_id + i,
            link_id=link_ids[i % len(link_ids)],
            timestamp=("2026-11-02T10:00:00Z", "2026-11-02T11:30:00+02:00", "")[i % 3],
            country=("de", " fr ", "", "US")[i % 4],
            city=("München", "", "Paris")[i % 3],
            user_agent=agents[i % len(agents)],
            ip=f"10.0.{i % 5}.{i}" if i % 6 else "",
            referrer_url=("https://news.example.com/a?x=1", "", "not a url")[i % 3],
            visitor_id="" if i % 4 else f"v{i}",
            trigger=("", "qr")[i % 2],
        )
        for i in range(40)
    ]


async def test_without_the_compiled_path_ingest_gives_the_same_answers(
    system, own, ch, tenant, tmp_path
):
    t = await tenant()
    # A live service whose import of the extension fails, as where it was never built.
    blocked = tmp_path / "without_clickwire"
    blocked.mkdir()
    (blocked / "sitecustomize.py").write_text(
        'import sys\nsys.modules["services.live._clickwire"] = None\n'
    )
    path = os.pathsep.join(p for p in (str(blocked), os.environ.get("PYTHONPATH", "")) if p)
    python_live = own.start("live", "own-live-python", PYTHONPATH=path)
    own.start("flusher", "own-flusher")
    bad = _clicks(t.link_ids, 3)
    bad[1].country = "Germany"
    answers = []
    for address, first_id in ((system.settings.live_addr, 1_000), (own.settings.live_addr, 2_000)):
        async with open_channel(system.settings, address) as channel:
            stub = protos.live_pb2_grpc.LiveServiceStub(channel)
            events = _varied_clicks(t.link_ids, first_id)
            reply = await stub.Ingest(
                protos.live_pb2.IngestRequest(events=events), metadata=t.metadata
            )
            again = await stub.Ingest(
                protos.live_pb2.IngestRequest(events=events[:5]), metadata=t.metadata
            )
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.Ingest(protos.live_pb2.IngestRequest(events=bad), metadata=t.metadata)
        answers.append(
            (
                reply.accepted,
                [i - first_id for i in reply.event_ids],
                (again.accepted, again.duplicates),
                (refused.value.code(), refused.value.details()),
            )
        )
    assert answers[0] == answers[1]
    assert answers[0][:3] == (40, list(range(40)), (5, 5))
    await system.drained()
    await wait_drained(own.settings, 60)
    stored = []
    for first_id in (1_000, 2_000):
        rows = await ch.fetch(
            "SELECT * FROM clicks WHERE workspace_id = %(w)s"
            " AND event_id >= %(a)s AND event_id < %(b)s ORDER BY event_id",
            {"w": t.workspace_id, "a": first_id, "b": first_id + 1_000},
        )
        stored.append([(row[0] - first_id, *row[1:]) for row in rows])
    assert len(stored[0]) == 40 and stored[0] == stored[1]
    log = python_live.log_path.read_text()
    assert log.count("compiled click path unavailable, using Python") == 1, log


async def test_redis_unreachable_is_503_and_nothing_is_accepted(system, own, tenant):
    t = await tenant()
    closed = f"redis://127.0.0.1:{free_port()}/0"
    own.settings = replace(own.settings, redis_url=closed)
    own.start("live", "own-live")
    own.start("gateway", "own-gateway")
    url = components.gateway_url(own.settings)
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        r = await client.post("/api/track/click", json={"linkId": t.link_ids[0]}, headers=t.headers)
    assert r.status_code == 503, r.text
    assert r.json()["success"] is False
    assert "not accepted" in r.json()["error"]["message"]
    async with grpc.aio.insecure_channel(own.settings.live_addr) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as down:
            await protos.live_pb2_grpc.LiveServiceStub(channel).Ingest(
                protos.live_pb2.IngestRequest(events=_clicks(t.link_ids, 10)), metadata=t.metadata
            )
    assert down.value.code() == grpc.StatusCode.UNAVAILABLE


@pytest.mark.skipif(
    devstack_clickhouse.find_server() is None, reason="clickhouse-server is not installed"
)
async def test_clickhouse_outage_then_recovery_counts_exactly(own, tenant, tmp_path):
    t = await tenant()
    ch_run = isolated_settings(tmp_path / "clickhouse")
    settings = replace(
        own.settings,
        clickhouse_url=ch_run.clickhouse_url,
        clickhouse_http_port=ch_run.clickhouse_http_port,
        clickhouse_http_ports=(),
        clickhouse_cluster="",
    )
    own.settings = settings
    devstack_clickhouse.ensure(ch_run)
    ch = ClickHouse.from_url(settings.clickhouse_url, pool_size=1)
    try:
        await migrate(settings.database_url, settings.clickhouse_url)
        own.start("live", "own-live")
        own.start("flusher", "own-flusher")
        await _ingest(settings, t, _clicks(t.link_ids, 1000))
        await wait_drained(settings, 60)
        assert await _count(ch, "clicks", t.workspace_id) == 1000

        assert devstack_clickhouse.stop(ch_run).state == "stopped"
        await _ingest(settings, t, _clicks(t.link_ids, 3000, start=1000))
        await asyncio.sleep(3)  # the flusher retries meanwhile
        assert await _pending(settings) > 0
        devstack_clickhouse.ensure(ch_run)
        await wait_drained(settings, 90)
        assert await _count(ch, "clicks", t.workspace_id) == 4000
    finally:
        ch.close()
        devstack_clickhouse.stop(ch_run)
        shutil.rmtree(tmp_path / "clickhouse", ignore_errors=True)
