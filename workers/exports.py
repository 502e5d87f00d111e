"""arq jobs of the export service: export files, batch queries, and their clean-up."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
from arq import Retry
from arq.constants import in_progress_key_prefix

from services.errors import StoreUnavailable
from services.export import batch, jobs, runner
from services.export.storage import ExportStorage
from services.stores.deps import Deps
from services.telemetry import log_context, tracing
from workers import backoff
from workers.job_metrics import records_run

log = logging.getLogger("linkpulse.worker.exports")

# Tries of one job (the first run included) before a store outage fails it.
MAX_TRIES = 5


def _backoff(ctx: dict[str, Any]) -> float:
    return backoff.delay(int(ctx.get("job_try", 1)), first=2.0, cap=60.0)


def _job_span(kind: str, job_id: str, ctx: dict[str, Any], trace_context: Any) -> Any:
    """The job run's span, a child of the request that queued it (trace_context)."""
    return tracing.continued(
        f"{kind} job",
        trace_context if isinstance(trace_context, dict) else None,
        attributes={
            "linkpulse.job.kind": kind,
            "linkpulse.job.id": job_id,
            "linkpulse.job.try": int(ctx.get("job_try", 1)),
        },
    )


@records_run("export")
async def run_export(
    ctx: dict[str, Any], job_id: str, trace_context: dict[str, str] | None = None
) -> dict[str, Any]:
    """Write one export's file (continuing the trace of the request that queued it)."""
    with _job_span("export", job_id, ctx, trace_context), log_context.bound(job=job_id):
        return await _run_export(ctx, job_id)


async def _run_export(ctx: dict[str, Any], job_id: str) -> dict[str, Any]:
    """Write one export's file; retried with backoff while ClickHouse is unreachable."""
    deps: Deps = ctx["deps"]
    job = await jobs.claim(deps.pg, job_id)
    if job is None:
        return {"status": "skipped"}  # cancelled, or finished by an earlier run
    try:
        outcome = await runner.write_file(
            deps.pg, deps.ch, deps.settings, ExportStorage(deps.settings.export_path), job
        )
    except StoreUnavailable as exc:
        if int(ctx.get("job_try", 1)) >= MAX_TRIES:
            await jobs.fail(deps.pg, job_id, job["attempt"], f"ClickHouse is unreachable: {exc}")
            return {"status": "failed"}
        log.warning("export %s: %s; retrying", job_id, exc)
        raise Retry(defer=_backoff(ctx)) from exc
    except Exception as exc:
        log.exception("export %s failed", job_id)
        await jobs.fail(deps.pg, job_id, job["attempt"], f"{type(exc).__name__}: {exc}")
        return {"status": "failed"}
    return runner.result_dict(outcome)


@records_run("batch")
async def run_batch(
    ctx: dict[str, Any], batch_id: str, trace_context: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run every item of one batch (continuing the trace of the request that queued it)."""
    with _job_span("batch", batch_id, ctx, trace_context), log_context.bound(job=batch_id):
        return await _run_batch(ctx, batch_id)


async def _run_batch(ctx: dict[str, Any], batch_id: str) -> dict[str, Any]:
    """Run every item of one batch as its caller; retried while a store is unreachable."""
    deps: Deps = ctx["deps"]
    job = await batch.claim(deps.pg, batch_id)
    if job is None:
        return {"status": "skipped"}
    principal = batch.principal_from_json(job["principal"])
    items = job["items"]
    beating = asyncio.create_task(_beat(deps, batch_id, job["attempt"]))
    try:
        results = await batch.run_items(
            deps, principal, orjson.loads(items) if isinstance(items, str) else items
        )
    except StoreUnavailable as exc:
        if int(ctx.get("job_try", 1)) >= MAX_TRIES:
            await batch.fail(deps.pg, batch_id, job["attempt"], str(exc))
            return {"status": "failed"}
        raise Retry(defer=_backoff(ctx)) from exc
    except Exception as exc:
        log.exception("batch %s failed", batch_id)
        await batch.fail(deps.pg, batch_id, job["attempt"], f"{type(exc).__name__}: {exc}")
        return {"status": "failed"}
    finally:
        beating.cancel()
    await batch.finish(deps.pg, batch_id, job["attempt"], results)
    return {"status": "succeeded", "items": len(results)}


async def _beat(deps: Deps, batch_id: str, attempt: int) -> None:
    """Report the batch's run alive a few times per stall period, so a dead worker's shows."""
    every = max(0.5, deps.settings.export_stalled_seconds / 3)
    while True:
        await asyncio.sleep(every)
        try:
            await batch.beat(deps.pg, batch_id, attempt)
        except Exception as exc:  # a missed beat only makes a takeover possible, never fails
            log.warning("batch %s: heartbeat failed (%s)", batch_id, exc)


async def resume_stalled_jobs(ctx: dict[str, Any]) -> list[str]:
    """Let another run take exports and batches whose worker died mid-way (arq would wait for
    the job's timeout); returns their ids."""
    deps: Deps = ctx["deps"]
    redis = ctx["redis"]
    seconds = deps.settings.export_stalled_seconds
    resumed = []
    for kind, stalled in (("export", jobs.stalled), ("batch", batch.stalled)):
        for job_id in await stalled(deps.pg, seconds):
            # The job is still in arq's queue; dropping its in-progress marker makes it runnable.
            if await redis.delete(in_progress_key_prefix + jobs.arq_job_id(kind, job_id)):
                resumed.append(job_id)
                log.warning("%s %s stalled (its worker is gone); it will run again", kind, job_id)
    return resumed


async def purge_expired_exports(ctx: dict[str, Any]) -> int:
    """Delete export files past their retention; returns how many."""
    deps: Deps = ctx["deps"]
    storage = ExportStorage(deps.settings.export_path)
    done = 0
    for job in await jobs.expired(deps.pg):
        storage.delete(job["workspace_id"], job["id"], job["format"])
        await jobs.forget_file(deps.pg, job["id"])
        done += 1
    return done
