"""ClickHouse SIGKILLed (not a clean stop) while events are ingested."""

from __future__ import annotations

import asyncio

import pytest

from tests.chaos.conftest import (
    DAY,
    Sender,
    Stack,
    assert_envelope,
    assert_exact,
    clicks,
    stored,
    until,
)

OVERVIEW = "/api/analytics/workspace/overview"


@pytest.mark.fault("clickhouse", "SIGKILL during ingest, restart")
async def test_clickhouse_killed_during_ingest(healthy: Stack, http, tenant, note) -> None:
    stack = healthy
    t = await tenant()
    sender = Sender(stack.settings.live_addr, t)
    events = clicks(t, 3_000_000, 20_000)
    sending = asyncio.create_task(sender.send_all(events, per_request=500))

    async def some_stored() -> bool:
        return (await stored(stack, t.workspace_id))[0] >= 1_000

    await until("the first batches in ClickHouse", some_stored)
    stack.kill_clickhouse()
    # Reads while it is down: the daily aggregates or a 503 with a reason, never a 500.
    window = {"start": DAY, "end": DAY, "timezone": "UTC"}
    r = await http.get(OVERVIEW, params=window, headers=t.headers)
    assert_envelope(r)
    note(f"overview while down: {r.status_code}")
    await asyncio.sleep(2)
    stack.start_clickhouse()
    await sending
    note(sender.summary())
    await assert_exact(stack, t, len(events), note)

    async def fresh() -> bool:
        r = await http.get(OVERVIEW, params=window, headers=t.headers)
        assert_envelope(r)
        return r.status_code == 200 and r.json()["data"]["totals"]["clicks"] == len(events)

    note(f"overview right again {await until('a right overview', fresh, 30):.1f}s after drain")
