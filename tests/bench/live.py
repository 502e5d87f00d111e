"""`make bench`'s live section: ingest throughput (gRPC, REST, raw insert) and ingest-to-WebSocket
latency, on the live service, its flusher and the gateway started for it; and, in process, what
enriching a click costs (tests/bench/enrichment.py).

BENCH_ONLY=live runs just this section; BENCH_INGEST_EVENTS (200,000), BENCH_REST_EVENTS (15,000,
within the enterprise plan's minute of requests: each REST click spends one) and BENCH_WS_SECONDS
(15) size it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

import asyncpg

from services.config import Settings
from services.stores.clickhouse import ClickHouse
from tests.bench import enrichment, ingest, live_ws, system
from tests.bench.enrichment import Cost
from tests.bench.ingest import IngestResult
from tests.bench.live_ws import LatencyPlan, LatencyResult
from tests.bench.progress import say

SECTION = "live"
NAMES = ("live", "flusher", "gateway")
# Targets of the live issue and of issue 18 (ingest at platform scale).
GRPC_OVER_RAW = 0.9
BATCH_OVER_GRPC = 0.5
SINGLE_RATE = 5000
P99_MS = 100.0
TARGET_RATE = 1000
TARGET_SUBSCRIBERS = 200


@dataclass(frozen=True)
class LiveBench:
    """Everything the section measured."""

    ingest: list[IngestResult]
    latency: list[LatencyResult]
    enrichment: list[Cost]


def wanted(only: tuple[str, ...]) -> bool:
    """True when the run includes this section (every run unless BENCH_ONLY names others)."""
    return not only or SECTION in only


def _env_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").replace("_", "")
    return int(raw) if raw else default


async def measure(
    settings: Settings, env: Mapping[str, str], environ: Mapping[str, str] = os.environ
) -> LiveBench:
    """Run the section on freshly started processes; each measurement has its own workspaces."""
    events = _env_int(environ, "BENCH_INGEST_EVENTS", 200_000)
    rest_events = _env_int(environ, "BENCH_REST_EVENTS", 15_000)
    seconds = float(_env_int(environ, "BENCH_WS_SECONDS", 15))
    plans = [
        # 200 subscribers, one per workspace: every event reaches one subscriber.
        LatencyPlan(workspaces=200, subscribers_per_workspace=1, seconds=seconds),
        # 200 subscribers, ten per workspace: every event reaches ten (fan-out).
        LatencyPlan(
            workspaces=20, subscribers_per_workspace=10, events_per_second=100, seconds=seconds
        ),
    ]
    costs = enrichment.measure()  # in process, before the servers take the cores
    say("live: enrichment " + ", ".join(f"{c.step} {c.new_us:.2f} µs" for c in costs[-2:]))
    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=4)
    ch = ClickHouse.from_url(settings.clickhouse_url)
    try:
        with system.running(settings, env, NAMES) as gateway_url:
            ingested = await ingest.measure(
                settings, pool, ch, gateway_url, events=events, rest_events=rest_events
            )
            latency = []
            for plan in plans:
                result = await live_ws.measure(settings, pool, gateway_url, plan)
                say(
                    f"live: {plan.subscribers} subscribers, {plan.events_per_second} events/s:"
                    f" p50 {result.latency.p50:.1f} ms, p99 {result.latency.percentile(99):.1f} ms"
                )
                latency.append(result)
    finally:
        ch.close()
        await pool.close()
    return LiveBench(ingested, latency, costs)


def _rate(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:,.0f}"


def _rates(bench: LiveBench) -> dict[str, float]:
    """Events/s by path: raw, grpc, batch (REST batches), single (REST single clicks)."""
    names = {
        "raw": "raw",
        "gRPC": "grpc",
        "/api/track/batch": "batch",
        "/api/track/click": "single",
    }
    return {names[word]: r.rate for r in bench.ingest for word in r.path.split() if word in names}


def _grpc_ratio(bench: LiveBench) -> float:
    rates = _rates(bench)
    return rates.get("grpc", math.nan) / rates.get("raw", math.nan)


def markdown(bench: LiveBench) -> str:
    """The section of docs/benchmarks.md."""
    raw = next(r.rate for r in bench.ingest if r.path.startswith("raw"))
    lines = [
        "## Live: ingest throughput",
        "Generated clicks (50 links, 5 user agents, 10 countries or none (a third, found from the"
        " address), public addresses, the last hour) into a fresh"
        " workspace per path; the clock runs from the first send until ClickHouse counts every"
        " one of them (accepted → Redis Stream → flusher → ClickHouse). The raw insert is"
        " clickhouse-driver inserting ready-made rows (epoch-second timestamps) into the same"
        " `clicks` table in blocks of the flusher's batch size, in the same run. Raw, gRPC and"
        " REST batches (the same 1,000-event batches as JSON) alternate for three rounds, each"
        " into a fresh workspace; a row shows the best round and lists all of them. REST single"
        " clicks run once, within a minute of the enterprise plan's rate limit.",
        "",
        "| path | events | seconds | events/s | × raw | × gRPC | how |",
        "|---|--:|--:|--:|--:|--:|---|",
    ]
    grpc_rate = _rates(bench).get("grpc", math.nan)
    for r in bench.ingest:
        lines.append(
            f"| {r.path} | {r.events:,} | {r.seconds:.2f} | {_rate(r.rate)}"
            f" | {r.rate / raw:.2f}× | {r.rate / grpc_rate:.2f}× | {r.detail} |"
        )
    lines += [
        "",
        "## Live: ingest-to-WebSocket latency",
        "Clicks sent through gRPC `Ingest` at a steady rate (batches of 10 with client event"
        " ids, round-robin over the workspaces) while WebSocket clients follow"
        " `/api/analytics/live/ws`; a delivery's latency is its receipt minus the send of its"
        " Ingest call, on one clock. Every event must reach every subscriber of its workspace.",
        "",
        "| subscribers | workspaces | events/s (achieved) | deliveries | p50 ms | p95 ms"
        " | p99 ms | max ms |",
        "|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for run in bench.latency:
        worst = max(run.latency.values) if run.latency.values else math.nan
        lines.append(
            f"| {run.plan.subscribers} | {run.plan.workspaces} | {run.plan.events_per_second}"
            f" ({run.achieved_rate:,.0f}) | {run.delivered:,} of {run.expected:,}"
            f" | {run.latency.p50:.1f} | {run.latency.p95:.1f}"
            f" | {run.latency.percentile(99):.1f} | {worst:.1f} |"
        )
    lines += ["", verdict(bench), "", enrichment.markdown(bench.enrichment)]
    return "\n".join(lines)


def verdict(bench: LiveBench) -> str:
    """Whether the live targets are met."""
    ratio = _grpc_ratio(bench)
    grpc_ok = ratio >= GRPC_OVER_RAW
    rates = _rates(bench)
    batch = rates.get("batch", math.nan) / rates.get("grpc", math.nan)
    single = rates.get("single", math.nan)
    lines = [
        f"- gRPC ingest ≥ {GRPC_OVER_RAW}× the raw insert: **{'met' if grpc_ok else 'missed'}**"
        f" ({ratio:.2f}×).",
        f"- REST batch ingest ≥ {BATCH_OVER_GRPC}× gRPC ingest:"
        f" **{'met' if batch >= BATCH_OVER_GRPC else 'missed'}** ({batch:.2f}×).",
        f"- REST single-click ingest ≥ {SINGLE_RATE:,} events/s:"
        f" **{'met' if single >= SINGLE_RATE else 'missed'}** ({_rate(single)} events/s).",
    ]
    for r in bench.latency:
        if r.plan.events_per_second < TARGET_RATE or r.plan.subscribers < TARGET_SUBSCRIBERS:
            continue
        p99 = r.latency.percentile(99)
        ok = p99 < P99_MS and r.delivered == r.expected
        lines.append(
            f"- p99 < {P99_MS:g} ms at {r.plan.events_per_second} events/s with"
            f" {r.plan.subscribers} subscribers: **{'met' if ok else 'missed'}** ({p99:.1f} ms,"
            f" {r.delivered:,} of {r.expected:,} delivered)."
        )
    return "\n".join(lines)
