"""`make bench`'s concurrency section: wrk against the gateway at several connection counts.

Three loads, each at BENCH_CONNECTIONS (16,64,256) connections for BENCH_WRK_SECONDS (10; 3 on a
smoke run under a million clicks; 0 turns the section off), with the machine's CPU split over
every run (tests/bench/cpu.py):
- cached reads: `GET /api/analytics/workspace/overview?days=30`, each request with the key of
  one of up to 100 workspaces in turn (their snapshots stored just before each run);
- cached reads without a rate limit: the same over 16 fresh workspaces whose plan has no
  per-minute limit, so the gateway answers them from its hot copies without spending a token;
- uncached reads: the same with `Cache-Control: no-cache` and `days` cycling through 1..90, so
  every request runs its queries;
- single-click ingest: `POST /api/track/click`, one event a request (a unique visitorId each),
  over 16 fresh workspaces' events:write keys; once wrk stops and the flusher has drained,
  ClickHouse must hold every answered event, no duplicate, and nothing beyond what was sent.
The reads go to the multi-tenant dataset when BENCH_TENANTS is set (workspaces sampled over the
size ranks, not the whale), else to the demo workspace of the route bench. BENCH_ONLY=concurrency
runs just this section.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx

from services.admin.credentials import create_api_key, revoke_api_key
from services.admin.links import create_link
from services.admin.tenants import create_workspace
from services.stores.clickhouse import ClickHouse
from tests.bench import cpu, system, wrk
from tests.bench.options import BenchOptions
from tests.bench.progress import say
from tests.bench.runner import NO_CACHE
from tests.bench.wrk import WrkResult, lua_string

SECTION = "concurrency"
NAMES = ("query", "live", "flusher", "gateway")
READ_KEYS = 100
# Concurrent requests of the Python warm-up that stores every cached-read key's snapshot.
WARM_CONCURRENCY = 4
INGEST_WORKSPACES = 16
UNLIMITED_WORKSPACES = 16
# A plan like enterprise without a per-minute limit (requests_per_minute 0 is unlimited).
UNLIMITED_PLAN = "bench-unlimited"
UNLIMITED_LOAD = "cached, no rate limit"
READ_PATH = "/api/analytics/workspace/overview"
INGEST_PATH = "/api/track/click"
DRAIN_SECONDS = 180.0
# Targets of the issue.
CACHED_RATE, CACHED_P99_MS, CACHED_AT = 5000.0, 50.0, 64
UNCACHED_CLEAN_AT = 256
INGEST_RATE, INGEST_AT = 5000.0, 64
AGENT = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"


@dataclass
class Run:
    """One wrk run and the CPU split over it."""

    load: str
    result: WrkResult
    cpu: cpu.Split
    ingested: IngestCheck | None = None


@dataclass(frozen=True)
class IngestCheck:
    """What ClickHouse holds of an ingest run's events after the flusher drained."""

    counted: int
    distinct: int
    answered: int
    sent: int
    drain_seconds: float

    @property
    def exact(self) -> bool:
        """Every answered event counted once, none beyond what was sent."""
        return self.answered <= self.counted <= self.sent and self.distinct == self.counted


@dataclass
class ConcurrencyBench:
    """Everything the section measured."""

    seconds: int
    dataset: str
    read_workspaces: int
    runs: list[Run] = field(default_factory=list)

    def run(self, load: str, connections: int) -> Run | None:
        """The run of a load at a connection count, if measured."""
        return next(
            (r for r in self.runs if r.load == load and r.result.connections == connections), None
        )


def wanted(options: BenchOptions) -> bool:
    """True unless BENCH_WRK_SECONDS=0 or BENCH_ONLY leaves the section out."""
    return options.wrk_seconds > 0 and (not options.only or SECTION in options.only)


def _read_script(keys: list[str], uncached: bool) -> str:
    headers = '["Cache-Control"] = "no-cache", ' if uncached else ""
    days = "sent % 90 + 1" if uncached else "30"
    counting = (
        ""
        if uncached
        else """
hits = 0
function response(status, headers, body)
  if headers["x-cache"] == "HIT" then hits = hits + 1 end
end
"""
    )
    return wrk.script(
        f"""
local keys = {{{", ".join(lua_string("Bearer " + k) for k in keys)}}}
sent = 0
{counting}
function request()
  sent = sent + 1
  local key = keys[(sent * 7 + (tid or 0)) % #keys + 1]
  local path = "{READ_PATH}?days=" .. ({days})
  return wrk.format("GET", path, {{{headers}["Authorization"] = key}}, nil)
end
"""
    )


def _ingest_script(targets: list[tuple[str, int]], run_id: str) -> str:
    rows = ", ".join(f"{{{lua_string('Bearer ' + k)}, {link}}}" for k, link in targets)
    return wrk.script(
        f"""
local targets = {{{rows}}}
local agent = {lua_string(AGENT)}
sent = 0
function request()
  sent = sent + 1
  local t = targets[(sent + (tid or 0)) % #targets + 1]
  local body = string.format('{{"linkId": %d, "visitorId": "{run_id}-%d-%d", "userAgent": %q,'
    .. ' "ip": "81.2.%d.%d", "country": "DE", "referrerUrl": "https://news.example.com/a"}}',
    t[2], tid or 0, sent, agent, sent % 250 + 1, (tid or 0) + 1)
  return wrk.format("POST", "{INGEST_PATH}",
    {{["Authorization"] = t[1], ["Content-Type"] = "application/json"}}, body)
end
"""
    )


async def _warm(url: str, keys: list[str]) -> int:
    """Store the snapshot of every key's cached read (they expire after SNAPSHOT_TTL_SECONDS, so
    before each cached run); returns how many keys then answered from the cache."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    for key in keys:
        queue.put_nowait(key)
    hits = 0

    async def worker(http: httpx.AsyncClient) -> None:
        nonlocal hits
        while not queue.empty():
            headers = {"Authorization": f"Bearer {queue.get_nowait()}"}
            # Computed and stored afresh (an older snapshot would answer UPDATING), then read.
            await http.get(READ_PATH, params={"days": 30}, headers={**headers, **NO_CACHE})
            response = await http.get(READ_PATH, params={"days": 30}, headers=headers)
            hits += response.headers.get("x-cache") == "HIT"

    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        await asyncio.gather(*(worker(http) for _ in range(WARM_CONCURRENCY)))
    return hits


async def _read_keys(pool: asyncpg.Pool, workspace_ids: list[int]) -> list[tuple[int, str]]:
    """READ_KEYS analytics:read keys, spread over the workspaces in turn."""
    made = []
    for i in range(READ_KEYS):
        ws = workspace_ids[i % len(workspace_ids)]
        key = await create_api_key(pool, ws, ["analytics:read"], name="bench wrk")
        made.append((int(key["id"]), str(key["key"])))
    return made


async def _unlimited_keys(pool: asyncpg.Pool, label: str) -> list[tuple[int, str]]:
    """analytics:read keys of UNLIMITED_WORKSPACES fresh workspaces on UNLIMITED_PLAN."""
    await pool.execute(
        "INSERT INTO plans (code, name, max_days, features, monthly_events, requests_per_minute)"
        " SELECT $1, 'Bench, no rate limit', max_days, features, monthly_events, 0 FROM plans"
        " WHERE code = 'enterprise' ON CONFLICT (code) DO NOTHING",
        UNLIMITED_PLAN,
    )
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    made = []
    for n in range(UNLIMITED_WORKSPACES):
        ws = await create_workspace(pool, f"bench wrk {label} {stamp} {n}", plan=UNLIMITED_PLAN)
        key = await create_api_key(pool, ws["id"], ["analytics:read"], name="bench wrk")
        made.append((int(key["id"]), str(key["key"])))
    return made


async def _ingest_targets(pool: asyncpg.Pool, label: str) -> list[tuple[int, int, str, int]]:
    """INGEST_WORKSPACES fresh workspaces: (workspace, key id, events:write key, link)."""
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    made = []
    for n in range(INGEST_WORKSPACES):
        ws = await create_workspace(pool, f"bench wrk {label} {stamp} {n}", plan="enterprise")
        link = await create_link(
            pool,
            ws["id"],
            domain="bench.lp",
            slug=f"wrk-{label}-{stamp}-{n}",
            destination_url="https://example.com/wrk",
        )
        key = await create_api_key(pool, ws["id"], ["events:write"], name="bench wrk")
        made.append((int(ws["id"]), int(key["id"]), str(key["key"]), int(link["id"])))
    return made


async def _drained(ch: ClickHouse, workspace_ids: list[int], answered: int) -> tuple[int, int]:
    """(count, distinct visitors) of the workspaces' clicks once the count stops growing."""
    ids = ", ".join(str(int(i)) for i in workspace_ids)
    sql = f"SELECT count(), uniqExact(visitor_id) FROM clicks WHERE workspace_id IN ({ids})"
    deadline = time.monotonic() + DRAIN_SECONDS
    last, stable_since = (-1, -1), time.monotonic()
    while True:
        rows = await ch.fetch(sql)
        now = (int(rows[0][0]), int(rows[0][1]))
        if now != last:
            last, stable_since = now, time.monotonic()
        elif now[0] >= answered and time.monotonic() - stable_since >= 3:
            return now
        if time.monotonic() > deadline:
            return now
        await asyncio.sleep(0.5)


async def _wrk(
    binary: str,
    url: str,
    script_text: str,
    connections: int,
    seconds: int,
    roots: Mapping[str, int],
    load: str,
    folder: Path,
) -> Run:
    path = folder / f"{load}-{connections}.lua"
    path.write_text(script_text)
    before = cpu.snapshot(roots)
    began = time.monotonic()
    proc = wrk.start(binary, url, path, connections, seconds)
    with_wrk = {**roots, "wrk": proc.pid}
    # Sample the tree while wrk lives (its own CPU is read from the snapshot just before exit).
    await asyncio.sleep(max(0.0, seconds - 0.5))
    last_wrk = cpu.snapshot(with_wrk).groups.get("wrk", 0.0)
    out, err = await asyncio.to_thread(proc.communicate)
    after = cpu.snapshot(roots)
    elapsed = time.monotonic() - began
    result = wrk.parse(proc.returncode, out, err, connections)
    split = cpu.split(before, after, elapsed)
    split.by_group["wrk"] = last_wrk / elapsed
    return Run(load, result, split)


async def measure(
    env: Mapping[str, str],
    options: BenchOptions,
    read_workspaces: list[int],
    dataset: str,
) -> ConcurrencyBench:
    """Start query, live, flusher and gateway on env's databases and run every load."""
    binary = wrk.ensure_installed()
    settings = system.settings_of(env)
    bench = ConcurrencyBench(options.wrk_seconds, dataset, len(read_workspaces))
    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=4)
    ch = ClickHouse.from_url(settings.clickhouse_url, pool_size=2)
    key_ids: list[int] = []
    try:
        read_keys = await _read_keys(pool, read_workspaces)
        key_ids += [k for k, _ in read_keys]
        keys = [k for _, k in read_keys]
        unlimited = await _unlimited_keys(pool, "unlimited")
        key_ids += [k for k, _ in unlimited]
        free_keys = [k for _, k in unlimited]
        with (
            system.running(settings, env, NAMES) as url,
            tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp,
        ):
            roots = system.pids(settings, env, NAMES)
            folder = Path(tmp)
            reads = (
                ("cached", keys, _read_script(keys, False)),
                (UNLIMITED_LOAD, free_keys, _read_script(free_keys, False)),
                ("uncached", keys, _read_script(keys, True)),
            )
            for connections in options.connections:
                for load, load_keys, text in reads:
                    if load != "uncached":
                        warm = await _warm(url, load_keys)
                        say(f"concurrency: {warm} of {len(load_keys)} {load} keys answer a HIT")
                    run = await _wrk(
                        binary, url, text, connections, options.wrk_seconds, roots, load, folder
                    )
                    bench.runs.append(run)
                    say(
                        f"concurrency: {load} at {connections}: {run.result.rate:,.0f} req/s,"
                        f" p50 {run.result.p50_ms:.1f} ms, p99 {run.result.p99_ms:.1f} ms;"
                        f" {run.cpu.text()}"
                    )
                targets = await _ingest_targets(pool, f"c{connections}")
                key_ids += [t[1] for t in targets]
                run_id = f"w{connections}-{int(time.time())}"
                text = _ingest_script([(t[2], t[3]) for t in targets], run_id)
                run = await _wrk(
                    binary, url, text, connections, options.wrk_seconds, roots, "ingest", folder
                )
                began = time.monotonic()
                counted, distinct = await _drained(ch, [t[0] for t in targets], run.result.ok)
                run.ingested = IngestCheck(
                    counted, distinct, run.result.ok, run.result.sent, time.monotonic() - began
                )
                bench.runs.append(run)
                say(
                    f"concurrency: ingest at {connections}: {run.result.rate:,.0f} events/s,"
                    f" p99 {run.result.p99_ms:.1f} ms; ClickHouse {counted:,} of"
                    f" {run.result.ok:,} answered ({run.result.sent:,} sent); {run.cpu.text()}"
                )
    finally:
        for key_id in key_ids:
            await revoke_api_key(pool, key_id)
        ch.close()
        await pool.close()
    return bench
