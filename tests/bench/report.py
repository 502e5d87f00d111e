"""The results as markdown: machine, dataset, method, latency and ratio tables, targets."""

from __future__ import annotations

import math
import os
import platform
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tests.bench.answers import VISITOR_TOLERANCE
from tests.bench.dataset import Dataset
from tests.bench.options import BenchOptions
from tests.bench.runner import RouteResult

COLD_OVER_DIRECT = 1.5
CACHED_OVER_COLD = 0.1
# "Far ahead of PostgreSQL": its p50 is at least this many times the gateway's uncached p50.
PG_OVER_COLD = 10.0


@dataclass(frozen=True)
class Environment:
    """Where the run happened."""

    clickhouse: str
    postgres: str
    postgres_settings: dict[str, str]


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def machine() -> str:
    """CPU model, cores and memory from /proc."""
    cpu = next(
        (line.split(":", 1)[1].strip() for line in _read("/proc/cpuinfo").splitlines()
         if line.startswith("model name")),
        platform.processor() or "unknown CPU",
    )  # fmt: skip
    mem_kb = next(
        (int(line.split()[1]) for line in _read("/proc/meminfo").splitlines()
         if line.startswith("MemTotal:")),
        0,
    )  # fmt: skip
    return (
        f"{os.cpu_count()} cores ({cpu}), {mem_kb / 1024 / 1024:.1f} GiB RAM,"
        f" {platform.system()} {platform.release()}, Python {platform.python_version()}"
    )


def _ms(value: float) -> str:
    if math.isnan(value):
        return "–"
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def _x(value: float) -> str:
    if math.isnan(value):
        return "–"
    return f"{value:.2f}×" if value < 10 else f"{value:.0f}×"


def _pair(samples: object) -> str:
    return f"{_ms(samples.p50)} / {_ms(samples.p95)}"  # type: ignore[attr-defined]


def targets(result: RouteResult) -> list[str]:
    """Which of the targets the route misses (empty: all met)."""
    missed = []
    cold_direct = result.ratio(result.cold, result.direct)
    if not cold_direct <= COLD_OVER_DIRECT:
        missed.append(f"uncached/ClickHouse {cold_direct:.2f} > {COLD_OVER_DIRECT}")
    cached_cold = result.ratio(result.cached, result.cold)
    if not cached_cold < CACHED_OVER_COLD:
        missed.append(f"cached/uncached {cached_cold:.2f} ≥ {CACHED_OVER_COLD}")
    pg_cold = result.ratio(result.postgres, result.cold)
    if not pg_cold >= PG_OVER_COLD:
        missed.append(f"PostgreSQL/uncached {pg_cold:.1f} < {PG_OVER_COLD:g}")
    return missed


def tables(results: list[RouteResult]) -> str:
    """The latency and ratio tables."""
    lines = [
        "| route | gateway uncached | gateway cached | ClickHouse direct | PostgreSQL | n (PG) |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    for r in results:
        lines.append(
            f"| {r.route.name} | {_pair(r.cold)} | {_pair(r.cached)} | {_pair(r.direct)}"
            f" | {_pair(r.postgres)} | {len(r.cold.values)} ({len(r.postgres.values)}) |"
        )
    lines += [
        "",
        "| route | uncached / ClickHouse | cached / uncached | PostgreSQL / uncached"
        " | answer | targets |",
        "|---|--:|--:|--:|---|---|",
    ]
    for r in results:
        answer = "MISMATCH" if r.mismatches else f"ok (visitors ±{r.visitor_error:.2%})"
        missed = targets(r)
        lines.append(
            f"| {r.route.name} | {_x(r.ratio(r.cold, r.direct))} | {_x(r.ratio(r.cached, r.cold))}"
            f" | {_x(r.ratio(r.postgres, r.cold))} | {answer}"
            f" | {'met' if not missed else 'missed: ' + '; '.join(missed)} |"
        )
    return "\n".join(lines)


def verdict(results: list[RouteResult]) -> str:
    """One line per target saying whether every route meets it."""

    def every(check: str, label: str) -> str:
        failing = [r.route.name for r in results if any(m.startswith(check) for m in targets(r))]
        if not failing:
            return f"- {label}: **met** on every route."
        return f"- {label}: **missed** on {', '.join(failing)}."

    return "\n".join(
        [
            every(
                "uncached/ClickHouse",
                f"uncached gateway p50 ≤ {COLD_OVER_DIRECT}× direct ClickHouse",
            ),
            every("cached/uncached", f"cached p50 < {CACHED_OVER_COLD}× uncached p50"),
            every(
                "PostgreSQL/uncached", f"PostgreSQL p50 ≥ {PG_OVER_COLD:g}× uncached gateway p50"
            ),
        ]
    )


def problems(results: list[RouteResult]) -> str:
    """Answer mismatches and cache problems, loudly; empty when there are none."""
    lines = []
    for r in results:
        for m in r.mismatches:
            lines.append(f"- **ANSWER MISMATCH** {r.route.name}: {m}")
        for p in r.cache_problems:
            lines.append(f"- **CACHE** {r.route.name}: {p}")
    return "\n".join(lines)


# A heading of a section written by hand, kept at the end when the report is regenerated.
HANDWRITTEN = "(by hand"


def handwritten(path: Path) -> str:
    """The hand-written sections of an existing report (from the first `## …(by hand…` heading
    to the end), empty when there are none."""
    lines = _read(str(path)).splitlines(keepends=True)
    for at, line in enumerate(lines):
        if line.startswith("## ") and HANDWRITTEN in line:
            return "".join(lines[at:])
    return ""


def generated() -> str:
    """The line saying when and by what the file was generated."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"Generated by `make bench` (`tests/bench/`) on {stamp}; regenerate rather than edit."


def markdown(
    options: BenchOptions, dataset: Dataset, env: Environment, results: list[RouteResult]
) -> str:
    """The whole docs/benchmarks.md."""
    pg_settings = ", ".join(f"{k} {v}" for k, v in env.postgres_settings.items())
    details = [
        "| route | request | engine statements (stages) | ClickHouse tables |",
        "|---|---|--:|---|",
    ]
    for r in results:
        details.append(
            f"| {r.route.name} | `{r.request}` | {r.plan.statements} ({len(r.plan.stages)})"
            f" | {', '.join(r.plan.tables())} |"
        )
    trouble = problems(results)
    setup = [
        f"- **Command:** `{options.command()}`",
        f"- **Machine:** {machine()}",
        f"- **Servers:** ClickHouse {env.clickhouse}; PostgreSQL {env.postgres} with stock"
        f" settings ({pg_settings}). The servers, the system under test and the bench share"
        " the machine.",
        f"- **Dataset:** the demo workspace (`services.demo.load_demo`, America/New_York, USD):"
        f" {dataset.counts['clicks']:,} clicks, {dataset.counts['leads']:,} leads and"
        f" {dataset.counts['sales']:,} sales over {dataset.days:.0f} days ({dataset.first} to"
        f" {dataset.last} UTC), in its own databases (`linkpulse_bench`).",
        f"- **Samples:** {options.repeat} per measurement after {options.warmup} warm-up rounds;"
        f" PostgreSQL at most {options.pg_repeat}, fewer once a route has spent"
        f" {options.pg_seconds:g} s on it but never fewer than {min(5, options.pg_repeat)}"
        " (the n column). The measurements of a route are interleaved round by round. Times are"
        " wall-clock milliseconds seen by the client, p50 / p95.",
    ]
    method = [
        "- **gateway uncached:** `GET` on the HTTP gateway with `Cache-Control: no-cache`, which"
        " skips the snapshot cache's read: HTTP → gateway → gRPC query service (auth, parameter"
        " resolution, presets) → ClickHouse → JSON.",
        "- **gateway cached:** the same request without the header, right after the uncached one"
        " stored its snapshot (each must answer `x-cache: HIT`).",
        "- **ClickHouse direct:** exactly the statements the query engine sends for the request"
        " (`engine.compile_query`'s output, captured by running the route's preset in-process),"
        " replayed with clickhouse-driver through the same async facade: stage after stage, each"
        " stage's statements concurrently, as the presets run them.",
        "- **PostgreSQL:** hand-written SQL computing the same numbers on plain tables"
        " `bench_clicks`, `bench_leads`, `bench_sales` (the ClickHouse columns; indexes on"
        " (workspace_id, timestamp) and link_id; analyzed): `count(*)`,"
        " `count(DISTINCT visitor_id)`, `sum(amount × rate)`, `date_trunc(unit, timestamp, zone)`,"
        " campaigns through the `links` table; independent queries concurrently on a pool.",
        "- **answer:** the gateway's answer against PostgreSQL's: every count and amount exact"
        f" (to the cent), unique visitors within {VISITOR_TOLERANCE:.0%} (ClickHouse's"
        " `uniqCombined(12)` sketch; the largest difference is shown).",
    ]
    sections = [
        "# Benchmarks",
        generated(),
        "## Setup",
        "\n".join(setup),
        "What is measured, per route:",
        "\n".join(method),
        "## Results",
        tables(results),
        "## Targets",
        verdict(results),
    ]
    if trouble:
        sections += ["Problems:", trouble]
    sections += ["## What each request runs", "\n".join(details)]
    return "\n\n".join(sections) + "\n"
