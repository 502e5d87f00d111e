"""The rollup job fills the daily aggregates from ClickHouse and keeps them current."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from arq import create_pool
from arq.connections import RedisSettings
from arq.worker import Worker

from services.config import Settings
from services.query import engine
from services.query.aggregates import load_state
from services.query.engine import EventQuery
from services.stores.clickhouse import ClickHouse
from services.timerange import local_midnight
from tests.ports import free_port
from tests.services.query.test_aggregates import insert_events, make_workspace, spread
from workers.main import QUEUE, worker_settings
from workers.rollups import (
    LOCK_CLASS,
    RollupSettings,
    drop_deleted_workspaces,
    history_days,
    load_workspaces,
    refresh_daily_aggregates,
    refresh_workspace,
)

ZONE = "America/New_York"
TZ = ZoneInfo(ZONE)
NOW = datetime(2026, 11, 10, 15, tzinfo=UTC)  # 10:00 in New York
TODAY = date(2026, 11, 10)


def _day(d: date, hour: int = 0) -> datetime:
    return local_midnight(d, TZ) + timedelta(hours=hour)


async def _rows(pg, workspace_id: int) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    aggregates = await pg.fetch(
        "SELECT * FROM daily_aggregates WHERE workspace_id = $1"
        " ORDER BY dimension, day, link_id, value",
        workspace_id,
    )
    revenue = await pg.fetch(
        "SELECT * FROM daily_revenue WHERE workspace_id = $1"
        " ORDER BY dimension, day, link_id, value, currency",
        workspace_id,
    )
    return [tuple(r) for r in aggregates], [tuple(r) for r in revenue]


async def _daily_totals(pg, workspace_id: int) -> dict[date, tuple[int, ...]]:
    rows = await pg.fetch(
        "SELECT day, clicks, bot_clicks, leads + bot_leads, sales + bot_sales"
        " FROM daily_aggregates WHERE workspace_id = $1 AND dimension = '' AND link_id = 0",
        workspace_id,
    )
    return {r[0]: tuple(r[1:]) for r in rows}


async def _clickhouse_daily(ch, workspace_id: int, zone: str, first: date, last: date):
    """Per local day: human clicks, bot clicks, leads and sales (bots included) from ClickHouse."""
    tz = ZoneInfo(zone)
    q = EventQuery(
        "clicks",
        workspace_id,
        local_midnight(first, tz),
        local_midnight(last + timedelta(days=1), tz),
        group_by=("time",),
        tz=zone,
    )
    found: dict[date, list[int]] = {}

    def add(rows, at: int, minus: dict[int, int] | None = None) -> None:
        for r in rows:
            day = datetime.fromtimestamp(r.key, tz).date()
            found.setdefault(day, [0, 0, 0, 0])[at] += r.events - (minus or {}).get(r.key, 0)

    humans = await engine.run(ch, q)
    everyone = await engine.run(ch, replace(q, include_bots=True))
    add(humans, 0)
    add(everyone, 1, {r.key: r.events for r in humans})
    for at, kind in ((2, "leads"), (3, "sales")):
        add(await engine.run(ch, replace(q, kind=kind, include_bots=True)), at)
    return {d: tuple(v) for d, v in found.items()}


async def _workspace(pg, ch, name: str, seed: int):
    events = await make_workspace(pg, name, zone=ZONE)
    instants = spread(_day(TODAY - timedelta(days=20)), _day(TODAY, 9), 400, seed=seed)
    await insert_events(ch, events, instants, seed=seed)
    [ws] = await load_workspaces(pg, [events.workspace_id])
    return events, ws


async def test_the_job_fills_the_aggregates(system, pg, ch):
    events, ws = await _workspace(pg, ch, "Rollup fill", seed=11)
    outcome = await refresh_workspace(pg, ch, ws, RollupSettings(), now=NOW)
    assert outcome is not None and outcome["rows"] > 0
    assert outcome["days"] == history_days(ws.max_days)

    state = await load_state(pg, ws.id)
    assert state is not None
    assert state.timezone == ZONE and state.refreshed_at == NOW
    assert state.covered_from == TODAY - timedelta(days=history_days(1095) - 1)

    first = TODAY - timedelta(days=20)
    expected = await _clickhouse_daily(ch, ws.id, ZONE, first, TODAY)
    assert await _daily_totals(pg, ws.id) == expected
    # Each dimension's values add up to the day's totals, per link and over all links.
    mismatched = await pg.fetch(
        "SELECT d.dimension, d.day, d.link_id FROM daily_aggregates d"
        " JOIN daily_aggregates t ON t.workspace_id = d.workspace_id AND t.dimension = ''"
        "  AND t.day = d.day AND t.link_id = d.link_id"
        " WHERE d.workspace_id = $1 AND d.dimension <> ''"
        " GROUP BY d.dimension, d.day, d.link_id, t.clicks, t.bot_clicks, t.leads, t.sales"
        " HAVING SUM(d.clicks) <> t.clicks OR SUM(d.bot_clicks) <> t.bot_clicks"
        "  OR SUM(d.leads) <> t.leads OR SUM(d.sales) <> t.sales",
        ws.id,
    )
    assert mismatched == []
    dimensions = {r[0] for r in await pg.fetch(
        "SELECT DISTINCT dimension FROM daily_aggregates WHERE workspace_id = $1", ws.id
    )}  # fmt: skip
    assert dimensions == {"", "country", "continent", "region", "city", "device", "browser",
                          "os", "referrer", "trigger"}  # fmt: skip
    currencies = await pg.fetch(
        "SELECT DISTINCT currency FROM daily_revenue WHERE workspace_id = $1", ws.id
    )
    assert {r[0] for r in currencies} <= {"USD", "EUR", "JPY", "GBP"} and currencies


async def test_a_rerun_replaces_recent_days_and_adds_nothing(system, pg, ch):
    events, ws = await _workspace(pg, ch, "Rollup rerun", seed=12)
    await refresh_workspace(pg, ch, ws, RollupSettings(), now=NOW)
    before = await _rows(pg, ws.id)
    await refresh_workspace(pg, ch, ws, RollupSettings(), now=NOW)
    assert await _rows(pg, ws.id) == before  # idempotent

    # Later the same day: more clicks today, and a late one for a day a week back.
    old_day = TODAY - timedelta(days=7)
    await insert_events(ch, events, [_day(TODAY, 10)] * 5 + [_day(old_day, 12)], seed=13)
    later = NOW + timedelta(hours=2)
    outcome = await refresh_workspace(pg, ch, ws, RollupSettings(recent_days=2), now=later)
    assert outcome is not None and outcome["days"] == 2  # yesterday and today
    expected = await _clickhouse_daily(ch, ws.id, ZONE, TODAY - timedelta(days=20), TODAY)
    got = await _daily_totals(pg, ws.id)
    assert got[TODAY] == expected[TODAY]  # replaced, not added to
    assert got[old_day] != expected[old_day]  # outside the recent days: not recomputed
    assert {d: v for d, v in got.items() if d != old_day} == {
        d: v for d, v in expected.items() if d != old_day
    }
    state = await load_state(pg, ws.id)
    assert state is not None and state.refreshed_at == later

    # Three days without a run: the next one goes back to the day of the last run.
    outcome = await refresh_workspace(pg, ch, ws, RollupSettings(), now=later + timedelta(days=3))
    assert outcome is not None and outcome["days"] == 4
    # A wider recent window catches the late event.
    await refresh_workspace(pg, ch, ws, RollupSettings(recent_days=14), now=later)
    assert (await _daily_totals(pg, ws.id))[old_day] == expected[old_day]


async def test_small_chunks_write_the_same_rows(system, pg, ch):
    events, ws = await _workspace(pg, ch, "Rollup chunks", seed=14)
    await refresh_workspace(pg, ch, ws, RollupSettings(), now=NOW)
    whole = await _rows(pg, ws.id)
    await pg.execute("DELETE FROM daily_aggregate_state WHERE workspace_id = $1", ws.id)
    outcome = await refresh_workspace(pg, ch, ws, RollupSettings(chunk_events=60), now=NOW)
    assert outcome is not None and outcome["chunks"] > 5
    assert await _rows(pg, ws.id) == whole


async def test_a_new_time_zone_rebuilds_the_days(system, pg, ch):
    events, ws = await _workspace(pg, ch, "Rollup zone", seed=15)
    await refresh_workspace(pg, ch, ws, RollupSettings(), now=NOW)
    await pg.execute("UPDATE workspaces SET timezone = 'Asia/Kathmandu' WHERE id = $1", ws.id)
    [moved] = await load_workspaces(pg, [ws.id])
    await refresh_workspace(pg, ch, moved, RollupSettings(), now=NOW)
    state = await load_state(pg, ws.id)
    assert state is not None and state.timezone == "Asia/Kathmandu"
    first = TODAY - timedelta(days=21)
    today = NOW.astimezone(ZoneInfo("Asia/Kathmandu")).date()
    expected = await _clickhouse_daily(ch, ws.id, "Asia/Kathmandu", first, today)
    assert await _daily_totals(pg, ws.id) == expected


async def test_a_shorter_plan_drops_older_days_and_a_longer_one_backfills(system, pg, ch):
    events, ws = await _workspace(pg, ch, "Rollup plan", seed=16)
    await refresh_workspace(pg, ch, ws, RollupSettings(), now=NOW)
    full = await _daily_totals(pg, ws.id)
    await pg.execute("UPDATE workspaces SET plan = 'free' WHERE id = $1", ws.id)
    [free] = await load_workspaces(pg, [ws.id])
    later = NOW + timedelta(days=45)
    await refresh_workspace(pg, ch, free, RollupSettings(), now=later)
    kept_from = later.astimezone(TZ).date() - timedelta(days=history_days(30) - 1)
    state = await load_state(pg, ws.id)
    assert state is not None and state.covered_from == kept_from
    assert await _daily_totals(pg, ws.id) == {d: v for d, v in full.items() if d >= kept_from}

    await pg.execute("UPDATE workspaces SET plan = 'business' WHERE id = $1", ws.id)
    [business] = await load_workspaces(pg, [ws.id])
    outcome = await refresh_workspace(pg, ch, business, RollupSettings(), now=later)
    wanted_from = later.astimezone(TZ).date() - timedelta(days=history_days(1095) - 1)
    # The older days backfilled, and the recent two refreshed as usual.
    assert outcome is not None and outcome["days"] == (kept_from - wanted_from).days + 2
    assert await _daily_totals(pg, ws.id) == full


async def test_deleted_workspaces_lose_their_aggregates(system, pg, ch):
    events, ws = await _workspace(pg, ch, "Rollup deleted", seed=17)
    await refresh_workspace(pg, ch, ws, RollupSettings(), now=NOW)
    await pg.execute("DELETE FROM workspaces WHERE id = $1", ws.id)
    assert ws.id in await drop_deleted_workspaces(pg)
    assert await _rows(pg, ws.id) == ([], [])
    assert await load_state(pg, ws.id) is None


async def test_clickhouse_down_leaves_the_aggregates_as_they_were(system, pg, ch):
    events, ws = await _workspace(pg, ch, "Rollup outage", seed=18)
    await refresh_workspace(pg, ch, ws, RollupSettings(), now=NOW)
    before = await _rows(pg, ws.id), await load_state(pg, ws.id)
    await insert_events(ch, events, [_day(TODAY, 1)] * 3, seed=19)
    nobody = ClickHouse.from_url(f"clickhouse://default@127.0.0.1:{free_port()}/linkpulse")
    try:
        result = await refresh_daily_aggregates({"pg": pg, "ch": nobody}, [ws.id])
    finally:
        nobody.close()
    assert "ClickHouse is unreachable" in result["stopped"]
    assert (await _rows(pg, ws.id), await load_state(pg, ws.id)) == before


async def test_a_workspace_being_refreshed_is_skipped(system, pg, ch):
    events, ws = await _workspace(pg, ch, "Rollup busy", seed=20)
    async with pg.acquire() as other:
        await other.execute("SELECT pg_advisory_lock($1, $2)", LOCK_CLASS, ws.id)
        try:
            assert await refresh_workspace(pg, ch, ws, RollupSettings(), now=NOW) is None
        finally:
            await other.execute("SELECT pg_advisory_unlock($1, $2)", LOCK_CLASS, ws.id)
    assert await load_state(pg, ws.id) is None


def test_the_worker_schedules_the_job(settings, monkeypatch):
    monkeypatch.setenv("ROLLUP_EVERY_MINUTES", "10")
    assert Settings().rollup_every_minutes == 10
    config = worker_settings(replace(settings, rollup_every_minutes=10))
    assert refresh_daily_aggregates in config["functions"]
    [cron] = [c for c in config["cron_jobs"] if c.coroutine is refresh_daily_aggregates]
    assert cron.minute == {0, 10, 20, 30, 40, 50}
    assert cron.run_at_startup and cron.timeout_s == 3600


async def test_a_real_worker_runs_the_job(system, settings, pg, ch):
    events, ws = await _workspace(pg, ch, "Rollup worker", seed=21)
    # A queue of this session's own: test sessions share the Redis db.
    queue = f"{QUEUE}:test:{os.getpid()}"
    redis = await create_pool(RedisSettings.from_dsn(settings.redis_url))
    try:
        job = await redis.enqueue_job("refresh_daily_aggregates", [ws.id], _queue_name=queue)
        assert job is not None
        config = {
            **worker_settings(settings),
            "queue_name": queue,
            "cron_jobs": [],
            "handle_signals": False,
        }
        worker = Worker(**config, burst=True, poll_delay=0.1)
        try:
            await worker.main()
        finally:
            await worker.close()
        result = await job.result(timeout=5)
    finally:
        await redis.aclose()
    assert ws.id in result["refreshed"]
    state = await load_state(pg, ws.id)
    assert state is not None and state.refreshed_at is not None
    assert await _daily_totals(pg, ws.id)
