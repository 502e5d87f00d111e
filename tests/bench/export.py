"""Export bench: the worker exporting the dataset's clicks to CSV against `clickhouse-client`.

For growing slices of the dataset (a quarter, half, all of its clicks, bots included, every
column), a fresh arq worker process runs a real export job (ClickHouse streams the rows, the
worker gzips them into the file) and `clickhouse-client … FORMAT CSVWithNames` writes the same
rows of the same columns to a plain file. Rates are rows per second of wall time (the job's
started_at to finished_at; the client's process); the worker's peak resident memory (VmHWM) is
read after each export, a fresh process each time, so it shows whether memory grows with size.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from arq import create_pool
from arq.connections import RedisSettings

from services.config import Settings
from services.devstack import components, processes
from services.export import jobs
from services.export.datasets import ExportSpec
from services.query.listings import LIST_COLUMNS
from services.stores.clickhouse import ClickHouse, ClickHouseTarget
from tests.bench.dataset import Dataset
from tests.bench.progress import say

FRACTIONS = (0.25, 0.5, 1.0)
# Target (issue 5): at least half the client's rate.
RATE_OVER_CLIENT = 0.5


@dataclass
class ExportRun:
    """One slice: its rows, both rates and the worker's memory."""

    rows: int
    worker_seconds: float
    client_seconds: float
    file_bytes: int
    client_bytes: int
    peak_rss_mb: float
    idle_rss_mb: float

    @property
    def worker_rate(self) -> float:
        """Rows per second written by the export job."""
        return self.rows / self.worker_seconds if self.worker_seconds else 0.0

    @property
    def client_rate(self) -> float:
        """Rows per second written by clickhouse-client."""
        return self.rows / self.client_seconds if self.client_seconds else 0.0


@dataclass
class ExportBench:
    """Every slice measured, or why none was."""

    runs: list[ExportRun] = field(default_factory=list)
    skipped: str = ""


def _memory_mb(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def _client() -> str | None:
    return shutil.which("clickhouse-client") or shutil.which("clickhouse")


def _client_sql(spec: ExportSpec) -> str:
    return (
        f"SELECT {', '.join(spec.columns)} FROM clicks WHERE workspace_id = {spec.workspace_id}"
        f" AND timestamp >= toDateTime({int(spec.start.timestamp())})"
        f" AND timestamp < toDateTime({int(spec.end.timestamp())}) FORMAT CSVWithNames"
    )


def _run_client(binary: str, target: ClickHouseTarget, sql: str, out: Path) -> float:
    argv = [binary] if binary.endswith("clickhouse-client") else [binary, "client"]
    argv += ["--host", target.host, "--port", str(target.port), "--user", target.user]
    if target.password:
        argv += ["--password", target.password]
    argv += ["--database", target.database, "--query", sql]
    began = time.monotonic()
    with out.open("wb") as sink:
        subprocess.run(argv, stdout=sink, check=True)
    return time.monotonic() - began


def _spec(dataset: Dataset, start: datetime, end: datetime) -> ExportSpec:
    return ExportSpec(
        dataset="clicks",
        fmt="csv",
        columns=LIST_COLUMNS["clicks"],
        workspace_id=dataset.workspace_id,
        start=start,
        end=end,
        previous_start=start,
        tz="UTC",
        granularity="day",
        link_ids=None,
        filters=(),
        include_bots=True,
        currency="USD",
    )


async def _export(
    pool: asyncpg.Pool, settings: Settings, spec: ExportSpec, rows: int
) -> asyncpg.Record:
    """Run one export job on the worker; its finished row."""
    job, _ = await jobs.create(
        pool, workspace_id=spec.workspace_id, actor="bench", spec=spec, estimate=rows
    )
    arq = await create_pool(RedisSettings.from_dsn(settings.redis_url))
    try:
        await arq.enqueue_job(
            "run_export",
            job["id"],
            _job_id=jobs.arq_job_id("export", job["id"]),
            _queue_name=settings.queue_name,
        )
    finally:
        await arq.aclose()
    while True:
        row = await pool.fetchrow(
            "SELECT status, rows_written, size_bytes, started_at, finished_at, error"
            " FROM export_jobs WHERE id = $1",
            job["id"],
        )
        if row["status"] not in ("queued", "running"):
            break
        await asyncio.sleep(0.05)
    if row["status"] != "succeeded":
        raise RuntimeError(f"bench export {job['id']} {row['status']}: {row['error']}")
    return row


async def measure(settings: Settings, env: dict[str, str], dataset: Dataset) -> ExportBench:
    """Export growing slices of the dataset's clicks both ways."""
    binary = _client()
    if binary is None:
        return ExportBench(skipped="clickhouse-client is not installed")
    target = ClickHouseTarget.from_url(settings.clickhouse_url)
    first = datetime.fromisoformat(dataset.first).replace(tzinfo=UTC)
    last = datetime.fromisoformat(dataset.last).replace(tzinfo=UTC) + timedelta(seconds=1)
    export_dir = Path(settings.run_dir) / "bench-exports"
    worker_env = {**env, "WORKER_CRON": "off", "EXPORT_DIR": str(export_dir)}
    spec_of_worker = components.spec(settings, "worker")
    worker = replace(spec_of_worker, name="bench-worker", env={**spec_of_worker.env, **worker_env})
    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=2)
    ch = ClickHouse.from_url(settings.clickhouse_url, pool_size=1)
    result = ExportBench()
    try:
        for fraction in FRACTIONS:
            end = first + (last - first) * fraction if fraction < 1 else last
            spec = _spec(dataset, first, end)
            found = await ch.fetch(
                "SELECT count() FROM clicks WHERE workspace_id = %(w)s"
                " AND timestamp >= toDateTime(%(s)s) AND timestamp < toDateTime(%(e)s)",
                {"w": dataset.workspace_id, "s": int(first.timestamp()), "e": int(end.timestamp())},
            )
            rows = int(found[0][0])
            say(f"export: {rows:,} clicks with clickhouse-client")
            client_file = export_dir / "client.csv"
            export_dir.mkdir(parents=True, exist_ok=True)
            client_seconds = await asyncio.to_thread(
                _run_client, binary, target, _client_sql(spec), client_file
            )
            client_bytes = client_file.stat().st_size
            client_file.unlink()
            say(f"export: {rows:,} clicks with a fresh worker")
            processes.stop(worker)
            state = processes.start(worker)
            assert state.pid is not None
            idle = _memory_mb(state.pid, "VmRSS")
            try:
                done = await _export(pool, settings, spec, rows)
                peak = _memory_mb(state.pid, "VmHWM")
            finally:
                processes.stop(worker)
            if done["rows_written"] != rows:
                raise RuntimeError(f"export wrote {done['rows_written']} rows, expected {rows}")
            seconds = (done["finished_at"] - done["started_at"]).total_seconds()
            result.runs.append(
                ExportRun(
                    rows, seconds, client_seconds, done["size_bytes"], client_bytes, peak, idle
                )
            )
            say(
                f"export: {rows:,} rows: worker {rows / seconds:,.0f} rows/s,"
                f" client {rows / client_seconds:,.0f} rows/s, worker peak {peak:.0f} MB"
            )
    finally:
        await pool.execute(
            "DELETE FROM export_jobs WHERE workspace_id = $1 AND actor = 'bench'",
            dataset.workspace_id,
        )
        await pool.close()
        ch.close()
        shutil.rmtree(export_dir, ignore_errors=True)
    return result


def markdown(bench: ExportBench, clicks: int) -> str:
    """The export section of docs/benchmarks.md."""
    lines = ["## Export", ""]
    if bench.skipped:
        return "\n".join([*lines, f"Not measured: {bench.skipped}.", ""])
    lines += [
        f"The dataset's clicks ({clicks:,} in all, bots included, all {len(LIST_COLUMNS['clicks'])}"
        " columns) exported to CSV by an export job on a fresh arq worker process (ClickHouse"
        " streams the rows over HTTP, the worker gzips them with ISA-L into the file) against"
        " `clickhouse-client … FORMAT CSVWithNames` writing the same rows to a plain file, in the"
        " same run. Peak memory is the worker process's VmHWM after the export.",
        "",
        "| rows | worker rows/s | client rows/s | worker ÷ client | file (gzip) | client file |"
        " worker peak RSS | worker idle RSS |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in bench.runs:
        ratio = run.worker_rate / run.client_rate if run.client_rate else float("nan")
        lines.append(
            f"| {run.rows:,} | {run.worker_rate:,.0f} | {run.client_rate:,.0f} | {ratio:.2f} |"
            f" {run.file_bytes / 1e6:,.1f} MB | {run.client_bytes / 1e6:,.1f} MB |"
            f" {run.peak_rss_mb:.0f} MB | {run.idle_rss_mb:.0f} MB |"
        )
    lines += ["", verdict(bench), ""]
    return "\n".join(lines)


def verdict(bench: ExportBench) -> str:
    """Whether the targets were met: half the client's rate, memory flat as exports grow."""
    if bench.skipped or not bench.runs:
        return f"export: not measured ({bench.skipped or 'no runs'})"
    largest = bench.runs[-1]
    ratio = largest.worker_rate / largest.client_rate if largest.client_rate else 0.0
    growth = largest.peak_rss_mb - bench.runs[0].peak_rss_mb
    rate_ok = "met" if ratio >= RATE_OVER_CLIENT else "MISSED"
    memory_ok = "flat" if abs(growth) < 20 else "GROWING"
    return (
        f"export: {ratio:.2f}× clickhouse-client's rate at {largest.rows:,} rows (target"
        f" ≥ {RATE_OVER_CLIENT}: {rate_ok}); worker peak memory {bench.runs[0].peak_rss_mb:.0f} MB"
        f" → {largest.peak_rss_mb:.0f} MB from {bench.runs[0].rows:,} to {largest.rows:,} rows"
        f" ({memory_ok})"
    )


def wanted(only: tuple[str, ...]) -> bool:
    """Whether BENCH_ONLY asks for the export bench (it runs unless other names were given)."""
    return not only or "export" in only
