"""The engine's bucket SQL, run on ClickHouse 18.16 (the server) and on a current ClickHouse
(chdb, in-process), gives Python's buckets around the offset changes of 30- and 45-minute zones."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import chdb
import pytest

from services import config
from services.query import buckets
from services.stores.clickhouse import ClickHouse, ClickHouseTarget
from services.stores.clickhouse_http import render
from tests.services.query import zone_changes as zc

Run = Callable[[str, dict[str, Any]], Awaitable[list[tuple[int, int]]]]
SELECT = (
    "SELECT toUInt32(timestamp), {bucket}"
    " FROM (SELECT toDateTime(arrayJoin(%(instants)s)) AS timestamp) ORDER BY 1"
)


@pytest.fixture(scope="module")
async def server() -> AsyncIterator[ClickHouse]:
    """The ClickHouse server of the tests (18.16 here), on its default database."""
    target = ClickHouseTarget.from_url(config.load().clickhouse_url)
    store = ClickHouse(replace(target, database="default"), pool_size=1)
    yield store
    store.close()


@pytest.fixture(params=["server", "chdb"])
def run(request: pytest.FixtureRequest, server: ClickHouse) -> Run:
    """Runs a statement on one engine, answering (instant, bucket start) pairs."""

    async def on_server(sql: str, params: dict[str, Any]) -> list[tuple[int, int]]:
        return [(int(a), int(b)) for a, b in await server.fetch(sql, params)]

    async def on_chdb(sql: str, params: dict[str, Any]) -> list[tuple[int, int]]:
        text = chdb.query(render(sql, params), "CSV").bytes().decode()
        return [(int(a), int(b)) for a, b in csv.reader(io.StringIO(text))]

    return on_server if request.param == "server" else on_chdb


def _epochs(instants: list[datetime]) -> list[int]:
    return [int(i.timestamp()) for i in instants]


async def _mismatches(
    run: Run, zone: str, granularity: str, instants: list[datetime]
) -> list[tuple[str, str, str]]:
    """(instant, Python's bucket, the engine's bucket) wherever the two differ."""
    tz = ZoneInfo(zone)
    bucket, params = buckets.bucket_sql(
        "timestamp", granularity, zone, min(instants), max(instants) + timedelta(seconds=1)
    )
    rows = await run(
        SELECT.format(bucket=bucket), {**params, "tz": zone, "instants": _epochs(instants)}
    )
    assert len(rows) == len(instants)
    found = []
    for epoch, start in rows:
        instant = datetime.fromtimestamp(epoch, UTC)
        expected = buckets.floor(instant, granularity, tz)
        if int(expected.timestamp()) != start:
            got = datetime.fromtimestamp(start, UTC)
            found.append(
                (buckets.label(instant, tz), buckets.label(expected, tz), buckets.label(got, tz))
            )
    return found


def _around_changes(
    zone: str, before: timedelta, after: timedelta, minutes: int
) -> list[list[datetime]]:
    """Per offset change of 2024-2027 (or one day for zones without), instants around it."""
    changes = zc.changes(zone) or [datetime(2026, 6, 1, tzinfo=UTC)]
    return [list(zc.every(c - before, c + after, minutes)) for c in changes]


@pytest.mark.parametrize("zone", [*zc.ZONES, "Europe/Berlin", "America/New_York"])
async def test_hour_buckets(run, zone):
    # One query per change, as a window of a timeseries holds a few changes at most.
    for instants in _around_changes(zone, timedelta(hours=6), timedelta(hours=6), 5):
        assert await _mismatches(run, zone, "hour", instants) == []


@pytest.mark.parametrize("zone", [*zc.ZONES, "Europe/Berlin"])
async def test_hour_buckets_over_a_window_with_several_changes(run, zone):
    tz = ZoneInfo(zone)
    start = datetime(2026, 1, 1, tzinfo=tz).astimezone(UTC)
    instants = list(zc.every(start, start + timedelta(days=365), 97))
    assert await _mismatches(run, zone, "hour", instants) == []


@pytest.mark.parametrize("zone", zc.ZONES)
async def test_day_buckets(run, zone):
    windows = _around_changes(zone, timedelta(days=1), timedelta(days=1), 15)
    assert await _mismatches(run, zone, "day", [i for w in windows for i in w]) == []


@pytest.mark.parametrize("zone", zc.ZONES)
async def test_month_buckets(run, zone):
    tz = ZoneInfo(zone)
    firsts = [
        datetime(year, month, 1, tzinfo=tz).astimezone(UTC)
        for year in range(2024, 2028)
        for month in range(1, 13)
    ]
    instants = [
        i for f in firsts for i in zc.every(f - timedelta(hours=2), f + timedelta(hours=2), 15)
    ]
    windows = _around_changes(zone, timedelta(hours=3), timedelta(hours=3), 15)
    instants += [i for w in windows for i in w]
    assert await _mismatches(run, zone, "month", sorted(set(instants))) == []


@pytest.mark.parametrize("zone", [*zc.ZONES, "Europe/Berlin"])
async def test_week_buckets(run, zone):
    tz = ZoneInfo(zone)
    mondays = [
        datetime(2026, 1, 5, tzinfo=tz).astimezone(UTC) + timedelta(weeks=n) for n in range(53)
    ]
    instants = [
        i for m in mondays for i in zc.every(m - timedelta(hours=2), m + timedelta(hours=2), 30)
    ]
    windows = _around_changes(zone, timedelta(days=4), timedelta(days=4), 180)
    instants += [i for w in windows for i in w]
    assert await _mismatches(run, zone, "week", sorted(set(instants))) == []
