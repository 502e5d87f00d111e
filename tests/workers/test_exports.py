"""The export job when ClickHouse is unreachable: retried with backoff, then failed."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from arq import Retry

from services.export import jobs
from services.export.datasets import ExportSpec
from services.query.listings import LIST_COLUMNS
from services.stores.clickhouse import ClickHouse
from services.stores.deps import Deps
from workers.exports import MAX_TRIES, run_export
from workers.main import worker_settings


def _spec(workspace_id: int) -> ExportSpec:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return ExportSpec(
        dataset="clicks",
        fmt="csv",
        columns=LIST_COLUMNS["clicks"],
        workspace_id=workspace_id,
        start=start,
        end=datetime(2026, 1, 2, tzinfo=UTC),
        previous_start=start,
        tz="UTC",
        granularity="hour",
        link_ids=None,
        filters=(),
        include_bots=False,
        currency="USD",
    )


async def test_clickhouse_down_retries_then_fails(system, pg, tenant, tmp_path):
    t = await tenant()
    job, created = await jobs.create(
        pg, workspace_id=t.workspace_id, actor="test", spec=_spec(t.workspace_id), estimate=5
    )
    assert created
    # Nothing listens on port 1: both ClickHouse interfaces are "down".
    settings = replace(system.settings, clickhouse_http_port=1, export_dir=str(tmp_path))
    deps = await Deps.open(settings)
    deps.ch.close()
    deps.ch = ClickHouse.from_url("clickhouse://default@127.0.0.1:1/nowhere", pool_size=1)
    try:
        with pytest.raises(Retry) as retry:
            await run_export({"deps": deps, "job_try": 1}, job["id"])
        assert retry.value.defer_score == 2000  # ms: 2 s, then 4, 8, …
        row = await pg.fetchrow("SELECT status, attempt FROM export_jobs WHERE id = $1", job["id"])
        assert (row["status"], row["attempt"]) == ("running", 1)
        result = await run_export({"deps": deps, "job_try": MAX_TRIES}, job["id"])
        assert result == {"status": "failed"}
        row = await pg.fetchrow("SELECT status, error FROM export_jobs WHERE id = $1", job["id"])
        assert row["status"] == "failed" and "unreachable" in row["error"]
        assert not list(tmp_path.rglob("*"))  # nothing written
        # A finished job is not run again.
        assert await run_export({"deps": deps, "job_try": 1}, job["id"]) == {"status": "skipped"}
    finally:
        await deps.close()


def test_the_queue_is_the_deployments(settings, monkeypatch):
    config = worker_settings(settings)
    assert config["queue_name"] == f"{settings.ingest_key_prefix}:arq:queue"
    names = {f.name for f in config["functions"] if hasattr(f, "name")}
    assert {"run_export", "run_batch"} <= names
    monkeypatch.setenv("WORKER_CRON", "off")
    from services.config import load

    quiet = worker_settings(load())
    assert [c.name for c in quiet["cron_jobs"]] == ["cron:resume_stalled_jobs"]
