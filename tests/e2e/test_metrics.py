"""Prometheus metrics of the running system: every process serves them, and traffic moves them.

Each process of the session (gateway, the four services, worker, flusher; their copies too) is
scraped before and after the traffic, and the series the traffic must move are compared.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest
import websockets
from prometheus_client.parser import text_string_to_metric_families

from services.devstack import components, processes
from services.devstack.endpoints import Endpoint
from services.devstack.probes import http_probe
from tests.ports import free_port

OVERVIEW = "/api/analytics/workspace/overview"
BATCH = "/api/track/batch"
EXPORTS = "/api/analytics/exports"
QUERY_SERVICE = "linkpulse.v1.QueryService"
Labels = frozenset[tuple[str, str]]


@dataclass(frozen=True)
class Scrape:
    """One scrape of one process: every sample by (name, labels)."""

    samples: dict[tuple[str, Labels], float]

    def total(self, name: str, **labels: str) -> float:
        """Sum of the samples of name whose labels include labels."""
        wanted = set(labels.items())
        return sum(v for (n, ls), v in self.samples.items() if n == name and wanted <= ls)

    def has(self, name: str) -> bool:
        """Whether any sample of name is there."""
        return any(n == name for n, _ in self.samples)


def parse(text: str) -> Scrape:
    """The samples of an exposition in the text format."""
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return Scrape(samples)


def component_of(spec: processes.ProcessSpec) -> str:
    """The component a process of the session serves (`linkpulse serve <component>`)."""
    return spec.marker.rsplit(" ", 1)[-1]


def metrics_urls(system) -> dict[str, str]:
    """The metrics URL of every process of the session, by process name."""
    urls = {}
    for name, spec in system.specs.items():
        component = component_of(spec)
        if component == "gateway":
            urls[name] = f"{system.gateway_url}/metrics"
            continue
        port = spec.env.get("METRICS_PORT") or system.settings.metrics_port(component)
        urls[name] = f"http://{system.settings.metrics_host}:{port}/metrics"
    return urls


async def scrape_all(system) -> dict[str, Scrape]:
    """A scrape of every process."""
    async with httpx.AsyncClient(timeout=10) as client:
        found = {}
        for name, url in metrics_urls(system).items():
            r = await client.get(url)
            assert r.status_code == 200, (name, url, r.text[:200])
            assert r.headers["content-type"].startswith("text/plain"), name
            found[name] = parse(r.text)
        return found


def by_component(system, scrapes: dict[str, Scrape], component: str) -> list[Scrape]:
    """The scrapes of every copy of a component."""
    return [s for name, s in scrapes.items() if component_of(system.specs[name]) == component]


def total(
    system, scrapes: dict[str, Scrape], component: str | None, name: str, **labels: str
) -> float:
    """name (with labels) summed over every copy of component (None: every process)."""
    chosen = scrapes.values() if component is None else by_component(system, scrapes, component)
    return sum(s.total(name, **labels) for s in chosen)


async def eventually(check: Callable[[], object], seconds: float = 15.0) -> None:
    """Wait until the async check() returns true (a sample gauge or a job takes a moment)."""
    deadline = time.monotonic() + seconds
    while True:
        if await check():  # type: ignore[misc]
            return
        assert time.monotonic() < deadline, "the metric did not move in time"
        await asyncio.sleep(0.2)


async def test_every_process_serves_metrics_with_its_build_info(system) -> None:
    scrapes = await scrape_all(system)
    assert {component_of(system.specs[name]) for name in scrapes} == set(components.COMPONENTS)
    for name, found in scrapes.items():
        component = component_of(system.specs[name])
        info = [
            dict(labels)
            for (n, labels), v in found.samples.items()
            if n == "linkpulse_build_info" and v == 1
        ]
        assert [i["component"] for i in info] == [component], (name, info)
        assert info[0]["version"]


async def test_traffic_moves_the_series_of_every_process(system, http, tenant, pg) -> None:
    before = await scrape_all(system)
    t = await tenant()

    # REST analytics: a miss, then a hit of the snapshot cache; an unknown path; no key.
    day = {"start": "2026-06-01", "end": "2026-06-01", "timezone": "UTC"}
    miss = await http.get(OVERVIEW, params=day, headers=t.headers)
    assert miss.status_code == 200 and miss.headers["x-cache"] == "MISS", miss.text
    hit = await http.get(OVERVIEW, params=day, headers=t.headers)
    assert hit.headers["x-cache"] == "HIT"
    assert (await http.get("/no/such/path/123")).status_code == 404
    assert (await http.get(OVERVIEW, params=day)).status_code == 401

    # Ingestion: two clicks (one with a client id), its duplicate, and a batch rejected whole.
    events = [
        {"linkId": t.link_ids[0]},
        {"linkId": t.link_ids[1], "eventId": "7001"},
        {"linkId": t.link_ids[1], "eventId": "7001"},
    ]
    r = await http.post(BATCH, json={"events": events}, headers=t.headers)
    assert r.json()["data"]["duplicates"] == 1, r.text
    bad = [{"linkId": t.link_ids[0]}, {"linkId": t.link_ids[0], "country": "Germany"}]
    assert (await http.post(BATCH, json={"events": bad}, headers=t.headers)).status_code == 400
    await system.drained()

    # An export job, through the worker.
    window = {"start": "2026-01-01", "end": "2026-01-10", "timezone": "UTC", "dataset": "clicks"}
    created = await http.post(EXPORTS, params=window, headers=t.headers)
    assert created.status_code == 202, created.text
    job_id = created.json()["data"]["id"]

    async def exported() -> bool:
        r = await http.get(f"{EXPORTS}/{job_id}", headers=t.headers)
        return r.json()["data"]["status"] == "succeeded"

    await eventually(exported, 60)

    # An audited action (an embed token), in whichever service records it.
    r = await http.post("/api/analytics/embed/tokens", json={"days": 7}, headers=t.headers)
    assert r.status_code == 200, r.text

    after = await scrape_all(system)

    def moved(component: str | None, name: str, **labels: str) -> float:
        return total(system, after, component, name, **labels) - total(
            system, before, component, name, **labels
        )

    http_total = "linkpulse_http_requests_total"
    assert moved("gateway", http_total, route=OVERVIEW, method="GET", status="200") == 2
    assert moved("gateway", http_total, route=OVERVIEW, method="GET", status="401") == 1
    assert moved("gateway", http_total, route="other", method="GET", status="404") == 1
    assert moved("gateway", http_total, route="/no/such/path/123") == 0
    duration = "linkpulse_http_request_duration_seconds_count"
    assert moved("gateway", duration, route=OVERVIEW, method="GET") == 3
    cache = "linkpulse_snapshot_cache_requests_total"
    assert moved("gateway", cache, result="hit") == 1
    assert moved("gateway", cache, result="miss") >= 1

    grpc_total = "linkpulse_grpc_requests_total"
    assert moved("query", grpc_total, service=QUERY_SERVICE, code="OK") >= 1
    assert moved("query", grpc_total, service=QUERY_SERVICE, code="UNAUTHENTICATED") == 1
    assert moved("query", "linkpulse_grpc_request_duration_seconds_count") >= 2
    assert moved("live", grpc_total, code="INVALID_ARGUMENT") == 1
    assert moved("query", "linkpulse_postgres_query_duration_seconds_count", kind="select") >= 1
    assert moved("query", "linkpulse_clickhouse_query_duration_seconds_count", kind="select") >= 1

    ingest = "linkpulse_ingest_events_total"
    assert moved("live", ingest, kind="click", outcome="accepted") == 2
    assert moved("live", ingest, kind="click", outcome="duplicate") == 1
    assert moved("live", ingest, kind="click", outcome="rejected") == 2
    assert moved("flusher", "linkpulse_flush_batch_events_sum") == 2
    assert moved("flusher", "linkpulse_flush_duration_seconds_count") >= 1

    jobs = "linkpulse_jobs_total"
    assert moved("export", jobs, kind="export", state="queued") == 1
    assert moved("worker", jobs, kind="export", state="running") == 1
    assert moved("worker", jobs, kind="export", state="done") == 1
    assert moved("worker", "linkpulse_job_duration_seconds_count", kind="export") == 1
    assert moved(None, "linkpulse_audit_appends_total") >= 1


async def test_stream_gauges_settle_at_zero_once_drained(system, http, tenant) -> None:
    t = await tenant()
    r = await http.post(BATCH, json={"events": [{"linkId": t.link_ids[0]}]}, headers=t.headers)
    assert r.status_code == 200, r.text
    await system.drained()

    async def settled() -> bool:
        scrapes = await scrape_all(system)
        flushers = by_component(system, scrapes, "flusher")
        # Every flusher samples the streams: nothing pending, nothing unflushed, and the entry
        # just written still there (trimming keeps a stream's last delivered entry); a gauge
        # never sampled would say 0 entries.
        return all(
            s.total("linkpulse_ingest_stream_length") >= 1
            and s.total("linkpulse_flusher_lag_seconds") == 0
            and s.total("linkpulse_ingest_stream_pending") == 0
            for s in flushers
        )

    await eventually(settled)


async def test_rate_limit_refusals_are_counted(system, http, tenant) -> None:
    t = await tenant(plan="free")
    before = await scrape_all(system)
    for _ in range(100):
        r = await http.get("/api/analytics/live", headers=t.headers)
        if r.status_code == 429:
            break
    assert r.status_code == 429
    after = await scrape_all(system)
    refusals = "linkpulse_ratelimit_refusals_total"
    assert (
        total(system, after, None, refusals, limit="requests")
        - total(system, before, None, refusals, limit="requests")
        == 1
    )
    status = {"route": "/api/analytics/live", "status": "429"}
    answered = "linkpulse_http_requests_total"
    assert (
        total(system, after, "gateway", answered, **status)
        - total(system, before, "gateway", answered, **status)
        == 1
    )


async def test_websocket_subscribers_gauge_follows_open_feeds(system, tenant) -> None:
    t = await tenant()
    url = system.gateway_url.replace("http://", "ws://") + "/api/analytics/live/ws"

    async def subscribers() -> float:
        found = await scrape_all(system)
        return total(system, found, "gateway", "linkpulse_websocket_subscribers")

    idle = await subscribers()
    async with websockets.connect(url, additional_headers=t.headers):

        async def counted() -> bool:
            return await subscribers() == idle + 1

        await eventually(counted)

    async def closed() -> bool:
        return await subscribers() == idle

    await eventually(closed)


async def test_audit_verification_is_counted(system, pg, tenant) -> None:
    from prometheus_client import REGISTRY

    from services.audit.verification import verify_workspace

    t = await tenant()
    labels = {"result": "ok"}
    before = REGISTRY.get_sample_value("linkpulse_audit_verifications_total", labels) or 0
    assert (await verify_workspace(pg, t.workspace_id))["ok"]
    assert REGISTRY.get_sample_value("linkpulse_audit_verifications_total", labels) == before + 1


@pytest.fixture
def multiworker_gateway(system, tmp_path: Path):
    """A second gateway of the system running two uvicorn workers, its metrics shared in
    tmp_path; yields its base URL, the multiprocess directory and the parent's pid."""
    port = free_port()
    shared = tmp_path / "multiproc"
    shared.mkdir()
    (shared / "counter_1.db").write_bytes(b"stale")  # an earlier run's: emptied at start
    env = {
        "GATEWAY_PORT": str(port),
        "GATEWAY_WORKERS": "2",
        "PROMETHEUS_MULTIPROC_DIR": str(shared),
    }
    spec = components.serve_spec(
        replace(system.settings, run_dir=tmp_path),
        "gateway",
        "gateway-workers",
        http_probe(Endpoint("127.0.0.1", port), components.HEALTH_PATH),
        env,
    )
    parent = processes.start(spec).pid
    try:
        yield f"http://127.0.0.1:{port}", shared, parent
    finally:
        processes.stop(spec)


async def test_multiworker_gateway_adds_up_every_worker(multiworker_gateway) -> None:
    base, shared, parent = multiworker_gateway
    assert not (shared / "counter_1.db").exists()
    requests = 24
    # A new connection per request, several at once: the kernel spreads them over the workers.
    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=base, timeout=10, limits=limits) as client:
        answers = await asyncio.gather(*(client.get("/openapi.json") for _ in range(requests)))
        assert all(a.status_code == 200 for a in answers)
        for _ in range(6):  # whichever worker answers the scrape, it reports every worker's
            r = await client.get("/metrics")
            found = parse(r.text)
            served = found.total(
                "linkpulse_http_requests_total", route="/openapi.json", status="200"
            )
            assert served == requests
            info = [ls for (n, ls), v in found.samples.items() if n == "linkpulse_build_info"]
            assert len(info) == 1 and dict(info[0])["component"] == "gateway"
    # The two workers wrote there (and the parent, which serves nothing: zeros).
    writers = {int(p.stem.rsplit("_", 1)[-1]) for p in shared.glob("counter_*.db")}
    assert len(writers - {parent}) == 2, sorted(os.listdir(shared))


async def test_a_stopped_worker_drops_its_live_gauges(system, tmp_path: Path) -> None:
    port = free_port()
    shared = tmp_path / "multiproc"
    env = {
        "GATEWAY_PORT": str(port),
        "GATEWAY_WORKERS": "2",
        "PROMETHEUS_MULTIPROC_DIR": str(shared),
    }
    spec = components.serve_spec(
        replace(system.settings, run_dir=tmp_path),
        "gateway",
        "gateway-workers-stop",
        http_probe(Endpoint("127.0.0.1", port), components.HEALTH_PATH),
        env,
    )
    parent = processes.start(spec).pid
    try:
        # The parent's and the 2 workers' (more if uvicorn replaced a worker it found stuck).
        deadline = time.monotonic() + 15
        while len(list(shared.glob("gauge_livesum_*.db"))) < 3:
            assert time.monotonic() < deadline, list(shared.glob("gauge_livesum_*.db"))
            await asyncio.sleep(0.2)
    finally:
        processes.stop(spec)
    assert [p.name for p in shared.glob("gauge_livesum_*.db")] == [f"gauge_livesum_{parent}.db"]
