"""Bucket starts, floors and labels in Python, around offset changes of 30- and 45-minute zones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.query import buckets
from tests.services.query import zone_changes as zc


def _labels(zone: str, start: str, end: str) -> list[str]:
    tz = ZoneInfo(zone)
    found = buckets.starts(datetime.fromisoformat(start), datetime.fromisoformat(end), "hour", tz)
    return [buckets.label(s, tz) for s in found]


def test_lord_howe_spring_forward_starts_hour_two_at_the_change():
    # 02:00+10:30 becomes 02:30+11:00: hour 02 is the half hour from the change.
    assert _labels("Australia/Lord_Howe", "2026-10-04T00:00+10:30", "2026-10-04T05:00+11:00") == [
        "2026-10-04T00:00:00+10:30",
        "2026-10-04T01:00:00+10:30",
        "2026-10-04T02:30:00+11:00",
        "2026-10-04T03:00:00+11:00",
        "2026-10-04T04:00:00+11:00",
    ]


def test_lord_howe_fall_back_gives_the_repeated_half_hour_its_own_bucket():
    # 02:00+11:00 becomes 01:30+10:30.
    assert _labels("Australia/Lord_Howe", "2026-04-05T00:00+11:00", "2026-04-05T04:00+10:30") == [
        "2026-04-05T00:00:00+11:00",
        "2026-04-05T01:00:00+11:00",
        "2026-04-05T01:30:00+10:30",
        "2026-04-05T02:00:00+10:30",
        "2026-04-05T03:00:00+10:30",
    ]


def test_lord_howe_hours_after_the_change_start_on_the_hour():
    labels = _labels("Australia/Lord_Howe", "2026-10-03T00:00+10:30", "2026-10-13T00:00+11:00")
    assert len(labels) == 240  # ten days, the change day's 23.5 hours in 24 buckets
    assert [x for x in labels if not x[14:19] == "00:00"] == ["2026-10-04T02:30:00+11:00"]
    assert "2026-10-10T16:00:00+11:00" in labels


def test_chatham_changes_at_a_quarter_to_the_hour():
    assert _labels("Pacific/Chatham", "2026-09-27T01:00+12:45", "2026-09-27T05:00+13:45") == [
        "2026-09-27T01:00:00+12:45",
        "2026-09-27T02:00:00+12:45",
        "2026-09-27T03:45:00+13:45",
        "2026-09-27T04:00:00+13:45",
    ]
    assert _labels("Pacific/Chatham", "2026-04-05T02:00+13:45", "2026-04-05T04:00+12:45") == [
        "2026-04-05T02:00:00+13:45",
        "2026-04-05T03:00:00+13:45",
        "2026-04-05T02:45:00+12:45",
        "2026-04-05T03:00:00+12:45",
    ]


def test_whole_hour_zones_keep_their_hours():
    # Berlin's fall-back: two 02:00 buckets, one per offset, as before.
    assert _labels("Europe/Berlin", "2026-10-25T01:00+02:00", "2026-10-25T04:00+01:00") == [
        "2026-10-25T01:00:00+02:00",
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:00:00+01:00",
        "2026-10-25T03:00:00+01:00",
    ]
    assert _labels("America/New_York", "2026-03-08T00:00-05:00", "2026-03-08T04:00-04:00") == [
        "2026-03-08T00:00:00-05:00",
        "2026-03-08T01:00:00-05:00",
        "2026-03-08T03:00:00-04:00",
    ]


def test_floor_of_the_issue_example():
    tz = ZoneInfo("Australia/Lord_Howe")
    click = datetime(2026, 10, 10, 5, 10, tzinfo=UTC)
    assert buckets.label(buckets.floor(click, "hour", tz), tz) == "2026-10-10T16:00:00+11:00"
    on_change_day = datetime.fromisoformat("2026-10-04T03:10:00+11:00")
    assert buckets.label(buckets.floor(on_change_day, "hour", tz), tz) == (
        "2026-10-04T03:00:00+11:00"
    )
    in_half_hour = datetime.fromisoformat("2026-10-04T02:40:00+11:00")
    assert buckets.label(buckets.floor(in_half_hour, "hour", tz), tz) == (
        "2026-10-04T02:30:00+11:00"
    )


@pytest.mark.parametrize("zone", zc.ZONES)
def test_hour_floor_and_starts_agree_with_the_wall_clock_rule(zone):
    """Around every change of 2024-2027: each instant's bucket is the latest on-the-hour or
    offset-change instant at or before it, and it is one of the series' starts."""
    tz = ZoneInfo(zone)
    for change in zc.changes(zone) or [datetime(2026, 6, 1, tzinfo=UTC)]:
        lo, hi = change - timedelta(hours=6), change + timedelta(hours=6)
        series = buckets.starts(lo, hi, "hour", tz)
        assert series == sorted(set(series))
        for start in series[1:]:
            assert zc.is_hour_boundary(start, tz), (zone, buckets.label(start, tz))
        for instant in zc.every(lo, hi, minutes=5):
            expected = zc.hour_bucket(instant, tz)
            assert buckets.floor(instant, "hour", tz) == expected, (zone, instant)
            assert expected in series or expected < series[0] <= instant


@pytest.mark.parametrize("zone", zc.ZONES)
def test_day_and_month_floors_are_the_first_instants_of_the_local_day_and_month(zone):
    tz = ZoneInfo(zone)
    for change in zc.changes(zone) or [datetime(2026, 6, 1, tzinfo=UTC)]:
        for instant in zc.every(change - timedelta(days=1), change + timedelta(days=1), 15):
            assert buckets.floor(instant, "day", tz) == zc.first_instant_of(instant, tz)
        for instant in zc.every(change - timedelta(hours=2), change + timedelta(hours=2), 30):
            assert buckets.floor(instant, "month", tz) == zc.first_instant_of(instant, tz, True)


@pytest.mark.parametrize("zone", zc.ZONES)
def test_week_floors_are_the_first_instants_of_the_local_monday(zone):
    tz = ZoneInfo(zone)
    for change in zc.changes(zone) or [datetime(2026, 6, 1, tzinfo=UTC)]:
        for instant in zc.every(change - timedelta(days=8), change + timedelta(days=8), 97):
            floor = buckets.floor(instant, "week", tz)
            assert floor == zc.first_instant_of(instant, tz, week=True), (zone, instant)
            assert floor.astimezone(tz).weekday() == 0


def test_week_starts_follow_mondays_across_a_year_end():
    tz = ZoneInfo("Europe/Berlin")
    series = buckets.starts(
        datetime(2026, 12, 24, tzinfo=UTC), datetime(2027, 1, 20, tzinfo=UTC), "week", tz
    )
    assert [buckets.label(s, tz)[:10] for s in series] == [
        "2026-12-21",
        "2026-12-28",
        "2027-01-04",
        "2027-01-11",
        "2027-01-18",
    ]


def test_offsets_list_the_changes_of_the_window():
    found = buckets.offsets(
        "Australia/Lord_Howe", datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 10, 10, tzinfo=UTC)
    )
    assert found.initial == 37800
    assert found.changes == ((int(datetime(2026, 10, 3, 15, 30, tzinfo=UTC).timestamp()), 39600),)
    assert not found.on_utc_hours
    berlin = buckets.offsets(
        "Europe/Berlin", datetime(2026, 10, 20, tzinfo=UTC), datetime(2026, 10, 30, tzinfo=UTC)
    )
    assert berlin.on_utc_hours and len(berlin.changes) == 1
