"""The arq worker SIGKILLed mid-export and mid-batch; ClickHouse SIGKILLed during an export."""

from __future__ import annotations

import asyncio

import pytest

from tests.chaos import jobs
from tests.chaos.conftest import DAY, Sender, Stack, clicks, until

ROWS = 40_000


async def _with_clicks(stack: Stack, tenant, first_id: int):  # noqa: ANN001, ANN202
    t = await tenant()
    await Sender(stack.settings.live_addr, t).send_all(clicks(t, first_id, ROWS), 5_000)
    await stack.drained()
    return t


@pytest.mark.fault("worker", "SIGKILL mid-export, restart")
async def test_worker_killed_mid_export(healthy: Stack, http, tenant, note) -> None:
    stack = healthy
    t = await _with_clicks(stack, tenant, 10_000_000)
    job_id = await jobs.submit(http, t)
    seen = await jobs.wait_writing(http, t, job_id)
    stack.kill("worker")
    note(f"killed at {seen['rowsWritten']} of {ROWS} rows")
    stack.start("worker")
    done = await jobs.wait_done(http, t, job_id)
    ids = await jobs.exported_ids(http, done)
    note(f"{len(ids)} rows exported, {len(set(ids))} distinct")
    assert done["rowsWritten"] == len(ids) == len(set(ids)) == ROWS
    assert set(ids) == set(range(10_000_000, 10_000_000 + ROWS))


@pytest.mark.fault("clickhouse", "SIGKILL during an export, restart")
async def test_clickhouse_killed_mid_export(healthy: Stack, http, tenant, note) -> None:
    stack = healthy
    t = await _with_clicks(stack, tenant, 11_000_000)
    job_id = await jobs.submit(http, t)
    seen = await jobs.wait_writing(http, t, job_id)
    stack.kill_clickhouse()
    note(f"ClickHouse killed at {seen['rowsWritten']} of {ROWS} rows")
    r = await http.get(f"{jobs.EXPORTS}/{job_id}", headers=t.headers)
    assert r.status_code == 200, r.text  # the job's state lives in PostgreSQL
    await asyncio.sleep(2)
    stack.start_clickhouse()
    done = await jobs.wait_done(http, t, job_id)
    ids = await jobs.exported_ids(http, done)
    note(f"{len(ids)} rows exported, {len(set(ids))} distinct")
    assert done["rowsWritten"] == len(ids) == len(set(ids)) == ROWS


@pytest.mark.fault("worker", "SIGKILL mid-batch, restart")
async def test_worker_killed_mid_batch(healthy: Stack, http, tenant, note) -> None:
    stack = healthy
    t = await _with_clicks(stack, tenant, 12_000_000)
    window = {"start": DAY, "end": DAY, "timezone": "UTC"}
    items = [
        {"id": f"q{i}", "route": "/api/analytics/workspace/overview", "params": window}
        for i in range(50)
    ]
    r = await http.post("/api/analytics/batch", json={"queries": items}, headers=t.headers)
    assert r.status_code == 202, r.text
    batch_id = r.json()["data"]["id"]

    async def running() -> bool:
        r = await http.get(f"/api/analytics/batch/{batch_id}", headers=t.headers)
        return bool(r.json()["data"]["status"] == "running")

    await until("the batch running", running, 30)
    # 50 items, 4 at a time, 100 ms after each: about 1.3 s of run; killed a third of the way.
    await asyncio.sleep(0.4)
    stack.kill("worker")
    state = (await http.get(f"/api/analytics/batch/{batch_id}", headers=t.headers)).json()
    note(f"killed with the batch {state['data']['status']}")
    assert state["data"]["status"] == "running", state
    stack.start("worker")
    result: dict = {}

    async def done() -> bool:
        r = await http.get(f"/api/analytics/batch/{batch_id}", headers=t.headers)
        assert r.status_code == 200, r.text
        result.update(r.json()["data"])
        assert result["status"] in ("queued", "running", "succeeded"), result
        return bool(result["status"] == "succeeded")

    waited = await until("the batch done", done, 90)
    note(
        f"succeeded {waited:.1f}s after the restarted worker was ready (a stalled run is taken"
        " over after EXPORT_STALLED_SECONDS); 50 answers exact"
    )
    answers = [res["data"]["totals"]["clicks"] for res in result["results"] if res["ok"]]
    assert answers == [ROWS] * 50, result["results"][:2]
