"""With ClickHouse actually stopped, the routes answer from the daily aggregates or 503, never 500.

The test owns everything it stops: a second ClickHouse server on free ports under a temporary run
directory, its own PostgreSQL database, and the services and a gateway pointed at them.
The shared ClickHouse of the rest of the suite is left alone.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest

from services.admin import credentials
from services.config import Settings
from services.devstack import clickhouse_server as devstack_clickhouse
from services.devstack import components, processes
from services.protos import SERVICES
from services.stores.clickhouse import ClickHouse
from services.stores.migrate import migrate
from tests.databases import drop_postgres_database
from tests.services.devstack.helpers import isolated_settings, process_env
from tests.services.query.test_aggregates import insert_events, make_workspace, spread
from workers.rollups import refresh_daily_aggregates

pytestmark = pytest.mark.skipif(
    devstack_clickhouse.find_server() is None,
    reason="clickhouse-server is not installed (`linkpulse stack clickhouse` installs it)",
)

ZONE = "Europe/Berlin"
# Per run: two sessions may run this test at once.
DATABASE = f"linkpulse_fallback_{os.getpid()}"
# Redis db of this test's gateway (the suite uses 15, benchmarks 14, the dev stack 0).
REDIS_URL = "redis://127.0.0.1:6379/12"
OVERVIEW = "/api/analytics/workspace/overview"
TIMESERIES = "/api/analytics/workspace/timeseries"


@dataclass
class Stack:
    """The test's own ClickHouse, database and processes, and a tenant with data."""

    settings: Settings
    specs: dict[str, processes.ProcessSpec]
    http: httpx.AsyncClient
    headers: dict[str, str]
    link_ids: list[int]
    window: dict[str, str]


def _env(settings: Settings) -> dict[str, str]:
    return process_env(
        settings,
        AUTH_CACHE_SECONDS="1",
        # No snapshots: every answer must come from the query service as it is now.
        SNAPSHOT_TTL_SECONDS="0",
    )


def _spec(settings: Settings, name: str) -> processes.ProcessSpec:
    base = components.spec(settings, name)
    return replace(base, name=f"fallback-{name}", env=_env(settings))


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    run_dir: Path = tmp_path_factory.mktemp("fallback") / "run"
    settings = isolated_settings(
        run_dir,
        database_url=f"postgresql://postgres@127.0.0.1:5432/{DATABASE}",
        redis_url=REDIS_URL,
    )
    specs: dict[str, processes.ProcessSpec] = {}
    pg: asyncpg.Pool | None = None
    try:
        devstack_clickhouse.ensure(settings)
        await drop_postgres_database(settings.database_url)
        await migrate(settings.database_url, settings.clickhouse_url)
        pg = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=4)
        assert pg is not None
        events = await make_workspace(pg, "Fallback", zone=ZONE, link_count=2)
        key = await credentials.create_api_key(pg, events.workspace_id, ["analytics:read"])

        # Ten local days up to an hour ago, plus the day before them for the previous period.
        tz = ZoneInfo(ZONE)
        today = datetime.now(tz).date()
        first = today - timedelta(days=9)
        begin = datetime(first.year, first.month, first.day, tzinfo=tz) - timedelta(days=10)
        ch = ClickHouse.from_url(settings.clickhouse_url, pool_size=1)
        try:
            instants = spread(begin.astimezone(UTC), datetime.now(UTC) - timedelta(hours=1), 600, 5)
            await insert_events(ch, events, instants, seed=6)
        finally:
            ch.close()

        # The worker's job, run here, once, so the aggregates exist before ClickHouse stops
        # (tests/workers runs it in a real arq worker).
        ch = ClickHouse.from_url(settings.clickhouse_url, pool_size=4)
        try:
            result = await refresh_daily_aggregates({"pg": pg, "ch": ch})
        finally:
            ch.close()
        assert events.workspace_id in result["refreshed"], result

        # The gateway reports ready once every service answers, so all of them run.
        for name in (*SERVICES, "gateway"):
            specs[name] = _spec(settings, name)
            processes.start(specs[name])
        async with httpx.AsyncClient(base_url=components.gateway_url(settings), timeout=30) as http:
            yield Stack(
                settings=settings,
                specs=specs,
                http=http,
                headers={"Authorization": f"Bearer {key['key']}"},
                link_ids=events.link_ids,
                window={"start": first.isoformat(), "end": today.isoformat(), "timezone": ZONE},
            )
    finally:
        for spec in specs.values():
            processes.stop(spec)
        devstack_clickhouse.stop(settings)
        if pg is not None:
            await pg.close()
        await drop_postgres_database(settings.database_url)
        shutil.rmtree(run_dir, ignore_errors=True)


async def _get(stack: Stack, path: str, **params: Any) -> httpx.Response:
    r = await stack.http.get(path, params={**stack.window, **params}, headers=stack.headers)
    assert r.status_code != 500, r.text
    return r


def _without_visitors(data: dict[str, Any]) -> dict[str, Any]:
    """The response data with unique visitors and meta left out."""
    if isinstance(data, dict):
        return {
            k: _without_visitors(v) for k, v in data.items() if k not in ("uniqueVisitors", "meta")
        }
    if isinstance(data, list):
        return [_without_visitors(v) for v in data]  # type: ignore[return-value]
    return data


def _visitors(data: Any) -> list[int]:
    if isinstance(data, dict):
        found = [data["uniqueVisitors"]] if "uniqueVisitors" in data else []
        return found + [v for k, x in data.items() if k != "meta" for v in _visitors(x)]
    if isinstance(data, list):
        return [v for x in data for v in _visitors(x)]
    return []


# Every route the test compares, with its parameters.
COMPARED = (
    (OVERVIEW, {}),
    (TIMESERIES, {"granularity": "day"}),
    (TIMESERIES, {"granularity": "week"}),
    (TIMESERIES, {"granularity": "month"}),
)


QUERY = "/api/analytics/query"
# Query API requests the daily aggregates can answer (no visitors: those differ there).
QUERIES: tuple[dict[str, Any], ...] = (
    {
        "metrics": ["clicks", "leads", "sales", "revenue", "clickToLead"],
        "dimensions": ["country"],
        "filters": {"and": [{"dimension": "country", "op": "is_not", "values": ["FR"]}]},
    },
    {"metrics": ["clicks", "sales"], "dimensions": ["time:week"]},
    {"metrics": ["leads"], "dimensions": ["link"], "compare": "previous_period"},
)


async def _query(stack: Stack, body: dict[str, Any]) -> httpx.Response:
    r = await stack.http.post(QUERY, json={**stack.window, **body}, headers=stack.headers)
    assert r.status_code != 500, r.text
    return r


async def test_routes_answer_from_the_aggregates_while_clickhouse_is_down(stack: Stack):
    before = {}
    for path, params in COMPARED:
        r = await _get(stack, path, **params)
        assert r.status_code == 200, r.text
        body = r.json()["data"]
        assert body["meta"]["source"] == "clickhouse"
        assert body["meta"]["dataAsOf"] is None
        before[(path, tuple(params.items()))] = body
    assert before[(OVERVIEW, ())]["totals"]["clicks"] > 0
    queried = {}
    for body in QUERIES:
        r = await _query(stack, body)
        assert r.status_code == 200, r.text
        assert r.json()["data"]["meta"]["source"] == "clickhouse"
        queried[repr(body)] = r.json()["data"]
    assert queried[repr(QUERIES[0])]["rows"]

    assert devstack_clickhouse.stop(stack.settings).state == "stopped"
    try:
        # The query API: one dimension and is / is_not filters from the aggregates ...
        for body in QUERIES:
            r = await _query(stack, body)
            assert r.status_code == 200, r.text
            data, earlier = r.json()["data"], queried[repr(body)]
            assert data["meta"]["source"] == "aggregates", body
            assert data["rows"] == earlier["rows"], body
        # ... anything else a 503 with a reason.
        tree = {"dimension": "referrer", "op": "contains", "values": ["news"]}
        r = await _query(stack, {**QUERIES[0], "filters": tree})
        assert r.status_code == 503, r.text
        assert "filter tree" in r.json()["error"]["message"]
        r = await _query(stack, {**QUERIES[0], "dimensions": ["country", "device"]})
        assert r.status_code == 503, r.text

        for path, params in COMPARED:
            r = await _get(stack, path, **params)
            assert r.status_code == 200, r.text
            body = r.json()["data"]
            assert body["meta"]["source"] == "aggregates", (path, params)
            as_of = datetime.fromisoformat(body["meta"]["dataAsOf"])
            assert timedelta(0) <= datetime.now(UTC) - as_of < timedelta(minutes=30)
            earlier = before[(path, tuple(params.items()))]
            assert _without_visitors(body) == _without_visitors(earlier)
            # Daily visitors summed over days can only over-count.
            assert all(
                mine >= theirs
                for mine, theirs in zip(_visitors(body), _visitors(earlier), strict=True)
            )

        r = await _get(stack, TIMESERIES, granularity="hour")
        assert r.status_code == 503, r.text
        assert r.json()["success"] is False
        error = r.json()["error"]
        assert error["code"] == "unavailable"
        assert "ClickHouse is unreachable" in error["message"] and "hour" in error["message"]

        # Whatever a route cannot answer from the aggregates is a 503 with a reason, never a 500.
        link = stack.link_ids[0]
        for path in (
            "/api/analytics/workspace/devices",
            "/api/analytics/workspace/continents",
            "/api/analytics/workspace/regions",
            f"/api/analytics/{link}/summary",
            f"/api/analytics/{link}/timeseries",
            f"/api/analytics/{link}/cities",
            f"/api/analytics/{link}/rules",
            "/api/analytics/leads/breakdown",
            "/api/analytics/sales/timeseries",
        ):
            r = await _get(stack, path)
            assert r.status_code in (200, 501, 503), (path, r.text)
            if r.status_code == 200:
                assert r.json()["data"]["meta"]["source"] == "aggregates", path
            else:
                assert r.json()["success"] is False and r.json()["error"]["message"], path
    finally:
        devstack_clickhouse.ensure(stack.settings)

    # Back to ClickHouse as soon as it answers again.
    deadline = time.monotonic() + 30
    while True:
        r = await _get(stack, OVERVIEW)
        assert r.status_code in (200, 503), r.text
        if r.status_code == 200 and r.json()["data"]["meta"]["source"] == "clickhouse":
            break
        assert time.monotonic() < deadline, r.text
        await asyncio.sleep(0.5)
    assert r.json()["data"]["totals"] == before[(OVERVIEW, ())]["totals"]
    assert r.json()["data"]["meta"]["dataAsOf"] is None
