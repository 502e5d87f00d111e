"""One REST request is one trace across gateway → service → store, and an export job's run
continues the trace of the request that queued it (spans exported over OTLP/HTTP to a receiver
in the test)."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import websockets

from tests.e2e.own_stack import OwnStack, own_stack
from tests.otlp_collector import Collector, ReceivedSpan

WINDOW = {"start": "2026-01-01", "end": "2026-01-10", "timezone": "UTC"}
SERVER, CLIENT = 2, 3  # OTLP span kinds


@pytest.fixture(scope="module")
def collector() -> Iterator[Collector]:
    """The OTLP receiver the traced stack exports to."""
    running = Collector().start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def traced(system, collector: Collector) -> Iterator[OwnStack]:
    """A gateway, query, export and worker with tracing on."""
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "200"}
    with own_stack(system.settings, "traced", env) as stack:
        yield stack


@pytest.fixture
async def client(traced: OwnStack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=traced.gateway_url, timeout=30) as http:
        yield http


def traceparent() -> tuple[str, str, str]:
    """A fresh (traceparent header, trace id, parent span id)."""
    trace_id, parent = secrets.token_hex(16), secrets.token_hex(8)
    return f"00-{trace_id}-{parent}-01", trace_id, parent


def ancestors(span: ReceivedSpan, spans: list[ReceivedSpan]) -> list[ReceivedSpan]:
    """span's chain of parents among spans, nearest first (stops at a parent not received)."""
    by_id = {s.span_id: s for s in spans}
    chain = []
    current = by_id.get(span.parent_id)
    while current is not None and current not in chain:
        chain.append(current)
        current = by_id.get(current.parent_id)
    return chain


def store_spans(spans: list[ReceivedSpan], service: str) -> list[ReceivedSpan]:
    """The ClickHouse and PostgreSQL client spans of service."""
    return [
        s
        for s in spans
        if s.service == service
        and s.attributes.get("db.system", s.attributes.get("db.system.name"))
        in ("clickhouse", "postgresql")
    ]


async def test_a_rest_request_is_one_trace_from_gateway_to_store(client, collector, tenant):
    t = await tenant()
    header, trace_id, parent = traceparent()
    r = await client.get(
        "/api/analytics/workspace/overview",
        params=WINDOW,
        headers={**t.headers, "traceparent": header},
    )
    assert r.status_code == 200, r.text

    def complete(spans: list[ReceivedSpan]) -> bool:
        return any(
            s.attributes.get("db.system") == "clickhouse"
            for s in store_spans(spans, "linkpulse-query")
        ) and any(s.service == "linkpulse-gateway" and s.kind == SERVER for s in spans)

    spans = await collector.wait_for(trace_id, complete)
    assert complete(spans), spans
    gateway = [s for s in spans if s.service == "linkpulse-gateway" and s.kind == SERVER]
    assert len(gateway) == 1
    root = gateway[0]
    # The gateway continued the client's trace: its span is the child of the caller's.
    assert root.parent_id == parent
    assert root.name == "GET /api/analytics/workspace/overview"
    assert root.attributes["http.route"] == "/api/analytics/workspace/overview"
    assert root.attributes["http.response.status_code"] == 200
    clickhouse = [
        s
        for s in store_spans(spans, "linkpulse-query")
        if s.attributes["db.system"] == "clickhouse"
    ]
    for store in clickhouse:
        chain = ancestors(store, spans)
        services = [s.service for s in chain]
        # store → the query service's RPC span → the gateway's gRPC call → the gateway's request.
        assert chain[-1] == root, [(s.service, s.name) for s in chain]
        assert "linkpulse-query" in services and "linkpulse-gateway" in services
        rpc = next(s for s in chain if s.service == "linkpulse-query" and s.kind == SERVER)
        assert rpc.name.startswith("/linkpulse.v1.")
        assert store.attributes["db.operation"] == "select"
        assert store.kind == CLIENT
    # The key's lookup in PostgreSQL is in the same trace, its statement without values.
    postgres = [
        s
        for s in store_spans(spans, "linkpulse-query")
        if s.attributes.get("db.system") == "postgresql"
    ]
    assert postgres and all(ancestors(s, spans)[-1] == root for s in postgres)
    # Redis commands (the rate limit) are recorded by name, each argument a `?`.
    for redis in (s for s in spans if s.attributes.get("db.system") == "redis"):
        for command in str(redis.attributes["db.statement"]).splitlines():
            assert set(command.split()[1:]) <= {"?"}, command
    every_value = " ".join(str(v) for s in spans for v in s.attributes.values())
    assert t.key not in every_value and "db.statement.parameters" not in str(
        [s.attributes for s in spans]
    )


async def test_a_request_without_traceparent_starts_a_trace(client, collector, tenant):
    t = await tenant()
    r = await client.get("/api/analytics/workspace/overview", params=WINDOW, headers=t.headers)
    assert r.status_code == 200
    rid = r.headers["x-request-id"]

    def mine(spans: list[ReceivedSpan]) -> bool:
        return any(s.service == "linkpulse-query" and s.kind == SERVER for s in spans)

    # The new trace's root is the gateway's span of this request; the query service joined it.
    joined: list[ReceivedSpan] = []
    for _ in range(150):
        roots = [
            s
            for s in collector.spans
            if s.service == "linkpulse-gateway"
            and s.kind == SERVER
            and not s.parent_id
            and s.attributes.get("linkpulse.request_id") == rid
        ]
        joined = collector.of_trace(roots[0].trace_id) if roots else []
        if mine(joined):
            break
        await asyncio.sleep(0.2)
    assert mine(joined), f"no trace of the request {rid} reached the query service"


async def test_an_export_job_continues_the_trace_that_queued_it(client, collector, tenant):
    t = await tenant()
    header, trace_id, _parent = traceparent()
    r = await client.post(
        "/api/analytics/exports",
        params={**WINDOW, "dataset": "clicks", "columns": "event_id"},
        headers={**t.headers, "traceparent": header},
    )
    assert r.status_code in (200, 202), r.text

    def ran(spans: list[ReceivedSpan]) -> bool:
        return any(s.service == "linkpulse-worker" and s.name == "export job" for s in spans)

    spans = await collector.wait_for(trace_id, ran)
    assert ran(spans), [(s.service, s.name) for s in spans]
    job = next(s for s in spans if s.service == "linkpulse-worker" and s.name == "export job")
    chain = ancestors(job, spans)
    # job → the export service's RPC (which queued it) → … → the gateway's request.
    assert [s.service for s in chain][0] == "linkpulse-export"
    assert chain[-1].service == "linkpulse-gateway" and chain[-1].kind == SERVER
    assert job.attributes["linkpulse.job.id"] == r.json()["data"]["id"]


async def test_a_websocket_feed_is_traced_and_streams(client, traced, collector, tenant):
    t = await tenant()
    minted = await client.post("/api/analytics/live/token", json={}, headers=t.headers)
    assert minted.status_code == 200, minted.text
    header, trace_id, parent = traceparent()
    url = traced.gateway_url.replace("http://", "ws://") + "/api/analytics/live/ws"
    async with websockets.connect(
        f"{url}?token={minted.json()['data']['token']}", additional_headers={"traceparent": header}
    ) as feed:
        # The first frame came through the traced server-streaming call.
        assert json.loads(await feed.recv())

    def closed(spans: list[ReceivedSpan]) -> bool:
        return any(s.service == "linkpulse-gateway" and s.kind == SERVER for s in spans)

    spans = await collector.wait_for(trace_id, closed)
    socket = next(s for s in spans if s.service == "linkpulse-gateway" and s.kind == SERVER)
    assert socket.name == "WS /api/analytics/live/ws" and socket.parent_id == parent
    assert "token" not in str(socket.attributes)
    stream = [s for s in spans if s.service == "linkpulse-gateway" and s.kind == CLIENT]
    assert stream and all(ancestors(s, spans)[-1] == socket for s in stream)
