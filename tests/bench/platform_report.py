"""The multi-tenant and concurrency sections of docs/benchmarks.md, with their verdicts."""

from __future__ import annotations

import math
import statistics

from tests.bench import concurrency, tenants
from tests.bench.answers import VISITOR_TOLERANCE
from tests.bench.concurrency import ConcurrencyBench, Run
from tests.bench.options import BenchOptions
from tests.bench.tenants import TenantsBench


def _ms(value: float) -> str:
    if math.isnan(value):
        return "–"
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def _met(ok: bool) -> str:
    return "**met**" if ok else "**missed**"


def tenants_verdict(bench: TenantsBench) -> str:
    """One line per target of the section."""
    totals = [r for r in bench.routes if not isinstance(r.route.shape, tenants.Breakdown)]
    breakdowns = [r for r in bench.routes if isinstance(r.route.shape, tenants.Breakdown)]

    def line(label: str, failing: list[str]) -> str:
        if not failing:
            return f"- {label}: {_met(True)} on every route."
        return f"- {label}: {_met(False)} on {', '.join(failing)}."

    def over(routes: list[tenants.TenantRoute], target: str, limit: float) -> list[str]:
        return [
            f"{r.route.name} ({_ms(r.p50(target))} ms)"
            for r in routes
            if not r.p50(target) <= limit
        ]

    ratios = [
        f"{r.route.name} ({r.p50('small') / r.p50('alone'):.2f}×)"
        for r in bench.routes
        if not r.p50("small") <= tenants.SMALL_OVER_ALONE * r.p50("alone")
    ]
    mismatches = bench.mismatches()
    return "\n".join(
        [
            line(
                "whale overview, timeseries, summary and funnel p50"
                f" ≤ {tenants.WHALE_TOTALS_MS:g} ms",
                over(totals, "whale", tenants.WHALE_TOTALS_MS),
            ),
            line(
                f"whale breakdowns p50 ≤ {tenants.WHALE_BREAKDOWN_MS:g} ms",
                over(breakdowns, "whale", tenants.WHALE_BREAKDOWN_MS),
            ),
            line(
                f"small workspace p50 ≤ {tenants.SMALL_MS:g} ms",
                over(bench.routes, "small", tenants.SMALL_MS),
            ),
            line(f"small workspace p50 ≤ {tenants.SMALL_OVER_ALONE}× the same alone", ratios),
            f"- every answer exact (visitors within {VISITOR_TOLERANCE:.0%}), no error:"
            + (f" {_met(True)}." if not mismatches else f" {_met(False)}: {'; '.join(mismatches)}"),
        ]
    )


def tenants_markdown(bench: TenantsBench, options: BenchOptions) -> str:
    """The multi-tenant section."""
    data = bench.dataset
    sizes = [t.clicks for t in data.tenants]
    rest = sizes[1:]
    counts = data.counts
    built = "built for this run in" if data.built else "reused; it was built in"
    lines = [
        "## Multi-tenant: a small workspace, a mid one and the whale among 10,000 tenants"
        if options.tenant_workspaces == 10_000
        else "## Multi-tenant: a small workspace, a mid one and the whale among other tenants",
        f"- **Command:** `{options.command()}` (BENCH_ONLY=tenants runs only this section)",
        f"- **Dataset** (`tests/bench/tenant_data.py`, databases `linkpulse_bench_tenants`):"
        f" {counts['clicks']:,} clicks, {counts['leads']:,} leads and {counts['sales']:,} sales"
        f" over {data.params.days} days in {len(sizes):,} workspaces: the whale holds"
        f" {sizes[0]:,} clicks, {sum(1 for s in rest if s >= 100_000)} others hold 100k or"
        f" more, {sum(1 for s in rest if s < 10_000):,} hold under 10k (median"
        f" {statistics.median(rest):,.0f}); {sum(t.links for t in data.tenants):,} links. Generated"
        f" by ClickHouse itself (INSERT … SELECT, values hashed from the click's index); {built}"
        f" {data.seconds:.0f} s.",
        "- **Workspaces measured:** "
        + "; ".join(
            f"{name} = workspace {t.workspace_id} ({t.clicks:,} clicks, {t.links} links)"
            for name, t in bench.workspaces.items()
            if name != "alone"
        )
        + "; alone = the small workspace copied into `linkpulse_bench_alone`"
        f" ({bench.alone_counts['clicks']:,} clicks, {bench.alone_counts['leads']:,} leads,"
        f" {bench.alone_counts['sales']:,} sales,"
        " nothing else), served by a second query service and gateway started beside the first.",
        f"- **Method:** each route's first answer on every workspace is checked against exact SQL"
        f" written in the bench (`tests/bench/exact.py`: count(), uniqExact, sums with the"
        f" request's currency factors; visitors within {VISITOR_TOLERANCE:.0%}); then"
        f" {options.warmup} warm-up and {bench.repeat} measured rounds, each round one uncached"
        " request (`Cache-Control: no-cache`) per workspace in turn. p50 / p95, milliseconds as"
        " the client sees them.",
        "",
        "| route | small | small alone | small / alone | mid | whale | answers | targets |",
        "|---|--:|--:|--:|--:|--:|---|---|",
    ]
    for r in bench.routes:
        s = r.by_target
        worst = max(m.visitor_error for m in s.values())
        answer = "MISMATCH" if any(m.mismatches for m in s.values()) else f"ok (±{worst:.2%})"
        if any(m.errors for m in s.values()):
            answer = "ERROR: " + "; ".join(f"{t} {m.errors[0]}" for t, m in s.items() if m.errors)
        missed = r.missed()
        ratio = r.p50("small") / r.p50("alone") if r.p50("alone") else math.nan
        lines.append(
            f"| {r.route.name} | "
            + " | ".join(
                f"{_ms(s[t].samples.p50)} / {_ms(s[t].samples.p95)}" for t in ("small", "alone")
            )
            + f" | {ratio:.2f}× | "
            + " | ".join(
                f"{_ms(s[t].samples.p50)} / {_ms(s[t].samples.p95)}" for t in ("mid", "whale")
            )
            + f" | {answer} | {'met' if not missed else 'missed: ' + '; '.join(missed)} |"
        )
    lines += ["", "Targets (p50, same run):", "", tenants_verdict(bench)]
    return "\n".join(lines) + "\n"


def _errors(run: Run) -> str:
    r = run.result
    return f"{r.socket_errors} / {r.timeouts} / {r.non_2xx} / {r.unanswered}"


def _check(run: Run) -> str:
    if run.load.startswith("cached"):
        return f"{run.result.hits / max(run.result.requests, 1):.1%} HIT"
    if run.ingested is not None:
        i = run.ingested
        state = "exact" if i.exact else "NOT EXACT"
        return (
            f"{state}: {i.counted:,} in ClickHouse, {i.answered:,} answered, {i.sent:,} sent,"
            f" {i.distinct:,} distinct (drained in {i.drain_seconds:.0f} s)"
        )
    return "–"


def _cached_verdict(run: Run) -> str:
    r = run.result
    ok = r.rate >= concurrency.CACHED_RATE and r.p99_ms <= concurrency.CACHED_P99_MS and r.clean
    return f"{_met(ok)} ({r.rate:,.0f} req/s, p99 {_ms(r.p99_ms)} ms)."


def concurrency_verdict(bench: ConcurrencyBench) -> str:
    """One line per target of the section (a target whose run was not measured says so)."""
    lines = []
    cached = bench.run("cached", concurrency.CACHED_AT)
    if cached is None:
        lines.append(f"- cached reads at {concurrency.CACHED_AT} connections: not measured.")
    else:
        lines.append(
            f"- cached reads ≥ {concurrency.CACHED_RATE:,.0f} req/s with p99 ≤"
            f" {concurrency.CACHED_P99_MS:g} ms at {concurrency.CACHED_AT} connections:"
            f" {_cached_verdict(cached)}"
        )
    free = bench.run(concurrency.UNLIMITED_LOAD, concurrency.CACHED_AT)
    if free is not None:
        lines.append(
            f"- the same for keys without a rate limit (no token to spend): {_cached_verdict(free)}"
        )
    uncached = bench.run("uncached", concurrency.UNCACHED_CLEAN_AT)
    if uncached is None:
        lines.append(f"- uncached reads at {concurrency.UNCACHED_CLEAN_AT}: not measured.")
    else:
        r = uncached.result
        lines.append(
            f"- uncached reads without timeouts or errors at {concurrency.UNCACHED_CLEAN_AT}"
            f" connections: {_met(r.clean)} ({r.rate:,.0f} req/s, p99 {_ms(r.p99_ms)} ms,"
            f" socket errors / timeouts / errors / in flight at the end {_errors(uncached)})."
        )
    ingest = bench.run("ingest", concurrency.INGEST_AT)
    if ingest is None:
        lines.append(f"- single-event ingest at {concurrency.INGEST_AT}: not measured.")
    else:
        r = ingest.result
        ok = r.ok / r.seconds >= concurrency.INGEST_RATE and r.clean
        lines.append(
            f"- single-event REST ingest ≥ {concurrency.INGEST_RATE:,.0f} events/s at"
            f" {concurrency.INGEST_AT} connections: {_met(ok)} ({r.ok / r.seconds:,.0f} events/s)."
        )
    inexact = [f"{r.result.connections}" for r in bench.runs if r.ingested and not r.ingested.exact]
    lines.append(
        "- every ingested event in ClickHouse exactly once: "
        + (_met(True) if not inexact else f"{_met(False)} at {', '.join(inexact)} connections")
        + "."
    )
    return "\n".join(lines)


def concurrency_markdown(bench: ConcurrencyBench, options: BenchOptions) -> str:
    """The concurrency section."""
    lines = [
        "## Concurrency: wrk against the gateway",
        f"- **Command:** `{options.command()}` (BENCH_ONLY=concurrency runs only this section)",
        f"- **Tool:** Debian's `wrk`, {concurrency.wrk.THREADS} threads, {bench.seconds} s per"
        f" run, `--timeout {concurrency.wrk.TIMEOUT_SECONDS}s`, latency as wrk measures it."
        " The system under test: query, live and flusher services and the gateway, on"
        f" {bench.dataset}.",
        f"- **cached:** `GET {concurrency.READ_PATH}?days=30` with {concurrency.READ_KEYS} keys"
        f" of {bench.read_workspaces} workspaces in turn (their snapshots stored just before each"
        " run); the check column is the share of answers with `x-cache: HIT`.",
        "- **uncached:** the same with `Cache-Control: no-cache` and `days` cycling 1..90.",
        f"- **ingest:** `POST {concurrency.INGEST_PATH}`, one click a request (a unique visitorId"
        f" each) over {concurrency.INGEST_WORKSPACES} fresh workspaces' keys; after the run the"
        " flusher drains and ClickHouse must hold every answered event once (count = distinct"
        " visitors), and none beyond those sent.",
        "- **CPU:** cores each process used over the run (utime + stime from /proc; postgres"
        " counts every backend; clickhouse-server, postgres and redis-server are shared servers, so"
        " their figures include other users' queries; other = the rest of the machine).",
        "- A cached answer needs the key's authorization memo (AUTH_CACHE_SECONDS, re-checked"
        " by the gateway without the query, ahead of its end while the key is busy) and a"
        " snapshot younger than SNAPSHOT_TTL_SECONDS (past it, UPDATING while one request"
        " refreshes it); anything else shows in the HIT share. Keys of the cached load have"
        " their plan's rate limit (busy ones lease tokens); the no-rate-limit load's do not.",
        "",
        "| load | connections | req/s | p50 ms | p99 ms | max ms | socket errors / timeouts /"
        " errors / in flight at the end | check | CPU (cores) |",
        "|---|--:|--:|--:|--:|--:|--:|---|---|",
    ]
    for run in bench.runs:
        r = run.result
        lines.append(
            f"| {run.load} | {r.connections} | {r.rate:,.0f} | {_ms(r.p50_ms)} | {_ms(r.p99_ms)}"
            f" | {_ms(r.max_ms)} | {_errors(run)} | {_check(run)} | {run.cpu.text()} |"
        )
    lines += ["", "Targets (same run):", "", concurrency_verdict(bench)]
    return "\n".join(lines) + "\n"
