"""Export jobs in PostgreSQL: every read and change scoped by workspace, each run by attempt."""

from __future__ import annotations

from datetime import datetime

import asyncpg
import orjson

from services.export.datasets import ExportSpec
from services.export.jobtable import JobTable, request_key
from services.telemetry import measure

TERMINAL = ("succeeded", "failed", "cancelled")
_COLUMNS = (
    "id, workspace_id, actor, dataset, format, columns, spec, status, rows_written,"
    " rows_estimated, size_bytes, file_name, error, attempt, created_at, started_at,"
    " heartbeat_at, finished_at, expires_at"
)
JOBS = JobTable(
    "export_jobs",
    _COLUMNS,
    id_prefix="exp",
    noun="export",
    claim_sets="started_at = coalesce(started_at, now()), heartbeat_at = now(), rows_written = 0",
)


def arq_job_id(kind: str, job_id: str) -> str:
    """The arq job id of an export or batch (`export:<id>`): enqueueing it twice runs it once."""
    return f"{kind}:{job_id}"


async def create(
    pg: asyncpg.Pool, *, workspace_id: int, actor: str, spec: ExportSpec, estimate: int
) -> tuple[asyncpg.Record, bool]:
    """A queued job for spec, or the identical one still queued or running; (job, created)."""
    return await JOBS.create(
        pg,
        workspace_id=workspace_id,
        actor=actor,
        key=request_key(actor, spec.to_json()),
        values={
            "dataset": spec.dataset,
            "format": spec.fmt,
            "columns": list(spec.columns),
            "spec": orjson.dumps(spec.to_json()).decode(),
            "rows_estimated": estimate,
        },
    )


async def get(pg: asyncpg.Pool, workspace_id: int, job_id: str) -> asyncpg.Record:
    """The workspace's job; NOT_FOUND for an unknown id or another workspace's job."""
    return await JOBS.get(pg, workspace_id, job_id)


async def page(
    pg: asyncpg.Pool, workspace_id: int, limit: int, after: tuple[datetime, str] | None
) -> list[asyncpg.Record]:
    """Up to limit jobs of the workspace, newest first, after a (created_at, id) position."""
    if after is None:
        return list(
            await pg.fetch(
                f"SELECT {_COLUMNS} FROM export_jobs WHERE workspace_id = $1"
                " ORDER BY created_at DESC, id DESC LIMIT $2",
                workspace_id,
                limit,
            )
        )
    return list(
        await pg.fetch(
            f"SELECT {_COLUMNS} FROM export_jobs WHERE workspace_id = $1"
            " AND (created_at, id) < ($3, $4) ORDER BY created_at DESC, id DESC LIMIT $2",
            workspace_id,
            limit,
            after[0],
            after[1],
        )
    )


async def cancel(pg: asyncpg.Pool, workspace_id: int, job_id: str) -> asyncpg.Record:
    """Cancel a queued or running job (a finished one is returned as it is)."""
    row = await pg.fetchrow(
        f"UPDATE export_jobs SET status = 'cancelled', finished_at = now()"
        f" WHERE workspace_id = $1 AND id = $2 AND status IN ('queued', 'running')"
        f" RETURNING {_COLUMNS}",
        workspace_id,
        job_id,
    )
    if row is None:
        return await get(pg, workspace_id, job_id)
    measure.job_state("export", "cancelled")
    return row


async def claim(pg: asyncpg.Pool, job_id: str) -> asyncpg.Record | None:
    """Start a new attempt of a queued or running job; None when it is finished or cancelled."""
    return await JOBS.claim(pg, job_id)


async def heartbeat(pg: asyncpg.Pool, job_id: str, attempt: int, rows: int) -> bool:
    """Record progress; False when the attempt should stop (cancelled or superseded)."""
    found = await pg.fetchval(
        "UPDATE export_jobs SET rows_written = $3, heartbeat_at = now()"
        " WHERE id = $1 AND attempt = $2 AND status = 'running' RETURNING 1",
        job_id,
        attempt,
        rows,
    )
    return found is not None


async def succeed(
    pg: asyncpg.Pool,
    job_id: str,
    attempt: int,
    *,
    rows: int,
    size: int,
    file_name: str,
    retention_hours: float,
) -> bool:
    """Mark the attempt's job succeeded with its file; False if the attempt no longer owns it."""
    return await JOBS.finish(
        pg,
        job_id,
        attempt,
        "status = 'succeeded', rows_written = $3, size_bytes = $4, file_name = $5,"
        " heartbeat_at = now(), expires_at = now() + make_interval(secs => $6)",
        rows,
        size,
        file_name,
        retention_hours * 3600.0,
    )


async def fail(pg: asyncpg.Pool, job_id: str, attempt: int, error: str) -> None:
    """Mark the attempt's job failed."""
    await JOBS.fail(pg, job_id, attempt, error)


async def stalled(pg: asyncpg.Pool, seconds: float) -> list[str]:
    """Running exports whose worker has not reported for seconds (it died)."""
    return await JOBS.stalled(pg, seconds)


async def expired(pg: asyncpg.Pool) -> list[asyncpg.Record]:
    """Jobs whose file's retention has passed (or whose job was cancelled or failed)."""
    return list(
        await pg.fetch(
            f"SELECT {_COLUMNS} FROM export_jobs WHERE file_name <> '' AND expires_at < now()"
        )
    )


async def forget_file(pg: asyncpg.Pool, job_id: str) -> None:
    """Record that a job's file was deleted."""
    await pg.execute("UPDATE export_jobs SET file_name = '' WHERE id = $1", job_id)
