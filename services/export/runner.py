"""Producing an export's rows: streamed by ClickHouse into a file, or computed by the presets."""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson

from services.config import Settings
from services.export import formats, jobs
from services.export.datasets import ExportSpec, aggregated_rows
from services.export.sql import compile_export
from services.export.storage import Cancelled, ExportStorage, Progress, write_bytes, write_stream
from services.stores import clickhouse_http
from services.stores.clickhouse import ClickHouse

log = logging.getLogger("linkpulse.export")

HEARTBEAT_SECONDS = 1.0


@dataclass(frozen=True)
class Outcome:
    """How one attempt ended: succeeded, cancelled or superseded (another attempt owns the job)."""

    status: str
    rows: int = 0
    size: int = 0


def header_lines(spec: ExportSpec) -> int:
    """Lines before the first row of a streamed file (CSV's column names)."""
    return 1 if spec.fmt == "csv" else 0


async def inline(ch: ClickHouse, settings: Settings, spec: ExportSpec) -> bytes:
    """The whole (small) export as one uncompressed document."""
    if not spec.raw:
        return formats.render(await aggregated_rows(ch, spec), spec.columns, spec.fmt)
    sql, params = compile_export(spec.export_query())

    def fetch() -> bytes:
        nodes = clickhouse_http.endpoints(ch.target, settings)
        with clickhouse_http.stream(ch.target, nodes, sql, params) as body:
            return b"".join(body)

    return await asyncio.to_thread(fetch)


async def write_file(
    pg: asyncpg.Pool,
    ch: ClickHouse,
    settings: Settings,
    storage: ExportStorage,
    job: asyncpg.Record,
) -> Outcome:
    """Write the claimed attempt's file and finish the job; the file appears only when complete."""
    spec = ExportSpec.from_json(orjson.loads(job["spec"]))
    job_id, attempt, ws = job["id"], job["attempt"], job["workspace_id"]
    storage.discard_attempts(ws, job_id)
    tmp = storage.temporary(ws, job_id, attempt)
    final = storage.path(ws, job_id, spec.fmt)
    progress = Progress()
    if spec.raw:
        sql, params = compile_export(spec.export_query())
        cancelled = threading.Event()

        def produce() -> int:
            with clickhouse_http.stream(
                ch.target, clickhouse_http.endpoints(ch.target, settings), sql, params
            ) as body:
                return write_stream(
                    body,
                    tmp,
                    final,
                    header_lines(spec),
                    progress,
                    cancelled,
                    settings.export_chunk_pause_ms / 1000,
                )

        writing = asyncio.ensure_future(asyncio.to_thread(produce))
        try:
            while True:
                done, _ = await asyncio.wait({writing}, timeout=HEARTBEAT_SECONDS)
                if done:
                    break
                if not await jobs.heartbeat(pg, job_id, attempt, progress.rows):
                    cancelled.set()
            size = writing.result()
        except Cancelled:
            return Outcome("cancelled", progress.rows)
        except BaseException:
            cancelled.set()
            await asyncio.gather(writing, return_exceptions=True)
            raise
    else:
        rows = await aggregated_rows(ch, spec)
        data = formats.render(rows, spec.columns, spec.fmt)
        size = await asyncio.to_thread(write_bytes, data, tmp, final)
        progress.rows = len(rows)
    finished = await jobs.succeed(
        pg,
        job_id,
        attempt,
        rows=progress.rows,
        size=size,
        file_name=final.name,
        retention_hours=settings.export_retention_hours,
    )
    if not finished:
        # Cancelled at the last moment, or a later attempt took over: keep nothing of ours
        # unless that attempt has finished with the same file.
        current = await pg.fetchrow(
            "SELECT status, file_name FROM export_jobs WHERE id = $1", job_id
        )
        if current is None or current["status"] in ("cancelled", "failed"):
            final.unlink(missing_ok=True)
            return Outcome("cancelled")
        return Outcome("superseded")
    log.info("export %s: %d rows, %d bytes", job_id, progress.rows, size)
    return Outcome("succeeded", progress.rows, size)


def result_dict(outcome: Outcome) -> dict[str, Any]:
    """The arq result of an export run."""
    return {"status": outcome.status, "rows": outcome.rows, "size": outcome.size}
