"""Buckets aligned in the requested time zone, across daylight-saving changes."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services import protos


def _expected(instants: list[datetime], tz: ZoneInfo, granularity: str) -> Counter[str]:
    """Independent bucketing: local wall-clock floor, labelled with that moment's offset."""
    counts: Counter[str] = Counter()
    for instant in instants:
        local = instant.astimezone(tz)
        if granularity == "hour":
            floor = local.replace(minute=0, second=0, microsecond=0)
        else:
            floor = datetime(local.year, local.month, local.day, tzinfo=tz)
        counts[floor.isoformat()] += 1
    return counts


async def _ingest(system, t, instants: list[datetime]) -> None:
    events = [
        protos.live_pb2.ClickEvent(
            link_id=t.link_ids[0], timestamp=i.isoformat(), visitor_id=f"v{n}"
        )
        for n, i in enumerate(instants)
    ]
    async with system.channel("live") as channel:
        await protos.live_pb2_grpc.LiveServiceStub(channel).Ingest(
            protos.live_pb2.IngestRequest(events=events), metadata=t.metadata
        )
    await system.drained()


@pytest.mark.parametrize(
    ("zone", "day", "hours_in_day"),
    [
        ("Europe/Berlin", "2026-10-25", 25),  # clocks go back: 25 hourly buckets
        ("Europe/Berlin", "2026-03-29", 23),  # clocks go forward: 23
        ("America/New_York", "2026-03-08", 23),
        ("Asia/Kathmandu", "2026-03-08", 24),  # +05:45, no DST
    ],
)
async def test_hour_buckets_across_dst(system, http, tenant, zone, day, hours_in_day):
    t = await tenant()
    tz = ZoneInfo(zone)
    start = datetime.fromisoformat(day).replace(tzinfo=tz).astimezone(UTC) - timedelta(hours=2)
    instants = [start + timedelta(minutes=17 * i) for i in range(120)]  # ~34 hours, every 17 min
    await _ingest(system, t, instants)

    r = await http.get(
        "/api/analytics/workspace/timeseries",
        params={"start": day, "end": day, "timezone": zone, "granularity": "hour"},
        headers=t.headers,
    )
    assert r.status_code == 200, r.text
    points = r.json()["data"]["points"]
    assert len(points) == hours_in_day
    expected = _expected(instants, tz, "hour")
    got = {p["time"]: p["clicks"] for p in points}
    assert got == {label: expected.get(label, 0) for label in got}
    assert sum(got.values()) == sum(v for k, v in expected.items() if k.startswith(day))


async def test_day_buckets_follow_local_midnight(system, http, tenant):
    t = await tenant()
    tz = ZoneInfo("America/Los_Angeles")
    first = datetime(2026, 10, 30, tzinfo=UTC)
    instants = [first + timedelta(hours=5 * i) for i in range(40)]  # spans the 2026-11-01 change
    await _ingest(system, t, instants)
    r = await http.get(
        "/api/analytics/workspace/timeseries",
        params={
            "start": "2026-10-30",
            "end": "2026-11-05",
            "timezone": "America/Los_Angeles",
            "granularity": "day",
        },
        headers=t.headers,
    )
    points = r.json()["data"]["points"]
    assert [p["time"] for p in points][:4] == [
        "2026-10-30T00:00:00-07:00",
        "2026-10-31T00:00:00-07:00",
        "2026-11-01T00:00:00-07:00",
        "2026-11-02T00:00:00-08:00",
    ]
    expected = _expected(instants, tz, "day")
    assert {p["time"]: p["clicks"] for p in points} == {
        p["time"]: expected.get(p["time"], 0) for p in points
    }


async def test_month_buckets(system, http, tenant):
    t = await tenant()
    # 23:30 UTC on Jan 31 is already February in Tokyo.
    instants = [
        datetime(2026, 1, 31, 23, 30, tzinfo=UTC),
        datetime(2026, 1, 15, tzinfo=UTC),
    ]
    await _ingest(system, t, instants)
    r = await http.get(
        "/api/analytics/workspace/timeseries",
        params={
            "start": "2026-01-01",
            "end": "2026-02-28",
            "timezone": "Asia/Tokyo",
            "granularity": "month",
        },
        headers=t.headers,
    )
    points = r.json()["data"]["points"]
    assert [(p["time"], p["clicks"]) for p in points] == [
        ("2026-01-01T00:00:00+09:00", 1),
        ("2026-02-01T00:00:00+09:00", 1),
    ]
