"""The cluster section of docs/benchmarks.md: single node vs cluster, ingest, the whale spread."""

from __future__ import annotations

import math

from tests.bench.answers import VISITOR_TOLERANCE
from tests.bench.cluster import SINGLE, ClusterBench, Compared, WhaleSpread
from tests.bench.ingest import IngestResult
from tests.bench.options import BenchOptions
from tests.bench.timing import Samples

# A route gains from spreading the whale when its p50 with event sharding is at most this share of
# its p50 with workspace sharding (and loses above the inverse).
GAIN = 0.9


def _ms(value: float) -> str:
    if math.isnan(value):
        return "–"
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def _x(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.2f}×"


def _pair(samples: Samples) -> str:
    return f"{_ms(samples.p50)} / {_ms(samples.p95)}"


def _answer(compared: Compared) -> str:
    others = [t for name, t in compared.by_side.items() if name != SINGLE]
    if any(t.mismatches for t in others):
        return "MISMATCH: " + "; ".join(t.mismatches[0] for t in others if t.mismatches)
    return f"same (visitors ±{max(t.visitor_error for t in others):.2%})"


def _load(values: tuple[float, float, float]) -> str:
    return " / ".join(f"{v:.2f}" for v in values)


def routes_table(routes: list[Compared]) -> list[str]:
    """Single node vs cluster: gateway uncached and direct ClickHouse, with ratios."""
    lines = [
        "| route | single node gateway | cluster gateway | cluster / single | single node"
        " ClickHouse | cluster ClickHouse | cluster / single | statements | answer |",
        "|---|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for c in routes:
        single, cluster = c.by_side[SINGLE], c.by_side["cluster"]
        lines.append(
            f"| {c.route.name} | {_pair(single.gateway)} | {_pair(cluster.gateway)}"
            f" | {_x(c.ratio('cluster', SINGLE))} | {_pair(single.direct)}"
            f" | {_pair(cluster.direct)} | {_x(c.ratio('cluster', SINGLE, direct=True))}"
            f" | {cluster.statements} | {_answer(c)} |"
        )
    return lines


def _path(result: IngestResult) -> str:
    return result.path.split(" (")[0]


def ingest_table(single: list[IngestResult] | None, cluster: list[IngestResult]) -> list[str]:
    """Events/s of each ingest path on the single node (the live section) and on the cluster."""
    by_path = {_path(r): r for r in single or []}
    lines = [
        "| path | events | single node events/s | cluster events/s | cluster / single"
        " | how (cluster) |",
        "|---|--:|--:|--:|--:|---|",
    ]
    for r in cluster:
        other = by_path.get(_path(r))
        rate = f"{other.rate:,.0f}" if other else "–"
        ratio = _x(r.rate / other.rate) if other and other.rate else "–"
        lines.append(f"| {r.path} | {r.events:,} | {rate} | {r.rate:,.0f} | {ratio} | {r.detail} |")
    return lines


def gains(spread: WhaleSpread) -> tuple[list[str], list[str], list[str]]:
    """Routes whose direct-ClickHouse p50 gains, loses or stays within 10% when the whale is
    spread (event sharding) rather than on one shard (workspace sharding)."""
    gain, lose, same = [], [], []
    for c in spread.routes:
        ratio = c.ratio("cluster, event", "cluster, workspace", direct=True)
        label = f"{c.route.name} ({ratio:.2f}×)"
        if ratio <= GAIN:
            gain.append(label)
        elif ratio >= 1 / GAIN:
            lose.append(label)
        else:
            same.append(label)
    return gain, lose, same


def spread_markdown(spread: WhaleSpread, options: BenchOptions) -> list[str]:
    """The whale spread subsection."""
    whale = spread.dataset.tenants[0]
    counts = spread.dataset.counts
    copied = next(iter(spread.copies.values())).counts["clicks"]
    shards = "; ".join(
        f"`{copy.database}` ({sharding} sharding): "
        + " + ".join(f"{n:,}" for n in spread.shards[sharding])
        for sharding, copy in spread.copies.items()
    )
    lines = [
        "### Spreading a whale: `CLICKHOUSE_SHARDING=workspace` vs `event`",
        "",
        f"- **Data:** the multi-tenant dataset (`linkpulse_bench_tenants`, {counts['clicks']:,}"
        f" clicks over {len(spread.dataset.tenants):,} workspaces; {copied:,} clicks with the"
        " concurrency section's ingest workspaces) copied twice onto the cluster, once per sharding"
        " key (the key places rows as they are inserted). The whale, workspace"
        f" {whale.workspace_id} ({whale.clicks:,} clicks), has per shard {shards}.",
        "- **Method:** as above, three systems side by side (the multi-tenant section's single-node"
        " system and one cluster system per copy), the whale's uncached routes and their"
        f" statements straight on ClickHouse, {options.warmup} warm-up and {spread.repeat}"
        " measured rounds (BENCH_TENANT_REPEAT) interleaved; answers compared with the single"
        " node's.",
        "",
        "| route | single node gateway | workspace gateway | event gateway | event / workspace"
        " | single node ClickHouse | workspace ClickHouse | event ClickHouse | event / workspace"
        " | answer |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for c in spread.routes:
        s = c.by_side
        ws, ev = "cluster, workspace", "cluster, event"
        lines.append(
            f"| {c.route.name} | {_pair(s[SINGLE].gateway)} | {_pair(s[ws].gateway)}"
            f" | {_pair(s[ev].gateway)} | {_x(c.ratio(ev, ws))} | {_pair(s[SINGLE].direct)}"
            f" | {_pair(s[ws].direct)} | {_pair(s[ev].direct)} | {_x(c.ratio(ev, ws, True))}"
            f" | {_answer(c)} |"
        )
    gain, lose, same = gains(spread)
    lines += [
        "",
        f"Spreading the whale (event sharding against workspace sharding, direct ClickHouse p50,"
        f" ±{1 - GAIN:.0%}):",
        "",
        f"- gain: {', '.join(gain) or 'none'}.",
        f"- lose: {', '.join(lose) or 'none'}.",
        f"- within ±{1 - GAIN:.0%}: {', '.join(same) or 'none'}.",
    ]
    return lines


def markdown(
    bench: ClusterBench, options: BenchOptions, single_ingest: list[IngestResult] | None
) -> str:
    """The cluster section."""
    copy = bench.copy
    layout = copy.layout
    first = layout.port_base + 1
    last = first + layout.shards * layout.replicas - 1
    counts = ", ".join(f"{n:,} {table}" for table, n in copy.counts.items())
    demo = ", ".join(f"{n:,} {kind}" for kind, n in bench.demo.items())
    lines = [
        "## Cluster: single node vs the dev ClickHouse cluster",
        "",
        f"- **Command:** `{options.command()}` (BENCH_ONLY=cluster runs only this section)",
        f"- **Cluster:** `{layout.name}`, {layout.shards} shards × {layout.replicas} replicas of"
        f" ClickHouse {bench.version} on 127.0.0.1:{first}..{last}"
        f" with ZooKeeper on {layout.zookeeper.endpoint}: Distributed tables in"
        f" `{copy.database}` over ReplicatedMergeTree tables in `{copy.database}_shard`. **All four"
        " nodes, ZooKeeper, the single-node server, both systems and the bench share the same"
        " 2 cores**, so the cluster cannot be faster than the one server for CPU-bound queries:"
        " these figures show the overhead of a Distributed query (the entry node fans out to one"
        " replica of each shard and merges their partial results) and of inserting through one.",
        f"- **Data:** the route bench's ClickHouse tables copied whole into `{copy.database}`"
        f" ({counts}: the demo workspace's {demo} and the live and concurrency sections' ingest"
        f" workspaces; `{copy.sharding}` sharding, so the demo workspace is on one shard; copied,"
        f" merged and replicated in {copy.seconds:.0f} s); the same PostgreSQL database"
        f" `{options.database}`.",
        f"- **Method:** the single-node system and a cluster system (query service and gateway,"
        f" `CLICKHOUSE_CLUSTER={layout.name}`) run side by side; each route's first answer on the"
        f" cluster must equal the single node's (every count and amount exact, visitors within"
        f" {VISITOR_TOLERANCE:.0%}); then {bench.warmup} warm-up and {bench.repeat} measured"
        " rounds, each round the uncached gateway request (`Cache-Control: no-cache`) on each"
        " system, then the engine's statements for that system straight on its ClickHouse (as in"
        " the route bench). p50 / p95, milliseconds as the client sees them.",
        f"- **Load average** (1 / 5 / 15 min) at the section's start {_load(bench.load[0])}, at"
        f" its end {_load(bench.load[1])}.",
        "",
        *routes_table(bench.routes),
        "",
        "### Ingest through the cluster",
        "",
        "The live section's ingest paths (same method and sizes) with the live service, its"
        " flusher and the gateway on the cluster: the flusher and the raw insert write through the"
        " Distributed `clicks` table (`insert_distributed_sync=1`, so an insert returns once every"
        " shard holds its rows); the clock stops when the cluster counts every event. The single"
        " node's figures are the live section's, earlier in the same run.",
        "",
        *ingest_table(single_ingest, bench.ingest),
    ]
    if bench.spread is not None:
        lines += ["", *spread_markdown(bench.spread, options)]
    mismatches = bench.mismatches()
    lines += [
        "",
        "- every cluster answer the same as the single node's: "
        + ("**met**." if not mismatches else f"**missed**: {'; '.join(mismatches)}"),
    ]
    return "\n".join(lines) + "\n"


def verdict(bench: ClusterBench) -> str:
    """One line for the console."""
    ratios = [c.ratio("cluster", SINGLE) for c in bench.routes]
    finite = [r for r in ratios if not math.isnan(r)]
    spread = ""
    if bench.spread is not None:
        gain, _, _ = gains(bench.spread)
        spread = f"; routes gaining from a spread whale: {', '.join(gain) or 'none'}"
    mismatches = bench.mismatches()
    return (
        f"cluster: gateway p50 {min(finite, default=math.nan):.2f}–"
        f"{max(finite, default=math.nan):.2f}× the single node's{spread}; answers "
        + ("the same" if not mismatches else f"DIFFER: {'; '.join(mismatches)}")
    )
