"""Range resolution: days, explicit ranges, caps and granularity defaults."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.errors import ApiError
from services.timerange import resolve

NOW = datetime(2026, 11, 23, 15, 30, tzinfo=UTC)


def _resolve(**overrides):
    args = dict(
        days=None,
        start="",
        end="",
        timezone_name="",
        granularity="",
        default_timezone="UTC",
        plan_max_days=365,
        max_days=3650,
        now=NOW,
    )
    args.update(overrides)
    return resolve(**args)


def test_days_are_whole_local_days_ending_tonight():
    w = _resolve(days=7, timezone_name="Asia/Tokyo")
    # 15:30 UTC is already Nov 24 in Tokyo: the window is Nov 18 00:00 .. Nov 25 00:00 there.
    assert w.start.isoformat() == "2026-11-17T15:00:00+00:00"
    assert w.end.isoformat() == "2026-11-24T15:00:00+00:00"
    assert w.previous_start.isoformat() == "2026-11-10T15:00:00+00:00"
    assert w.granularity == "day"


def test_defaults_to_the_workspace_zone_and_thirty_days():
    w = _resolve(default_timezone="Europe/Berlin")
    assert w.tz.key == "Europe/Berlin"
    assert (w.end - w.start).days == 30


def test_inclusive_end_date_and_datetimes():
    w = _resolve(start="2026-01-01", end="2026-01-01")
    assert (w.end - w.start).total_seconds() == 86400
    assert w.granularity == "hour"
    w = _resolve(start="2026-01-01T10:00:00+02:00", end="2026-01-01T12:00:00Z")
    assert w.start.isoformat() == "2026-01-01T08:00:00+00:00"
    assert w.end.isoformat() == "2026-01-01T12:00:00+00:00"


def test_plan_cap_applies_to_days_with_a_notice():
    w = _resolve(days=400)
    assert (w.end - w.start).days == 365
    assert w.notices == ("days capped at 365 by the plan",)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"days": 0}, "days"),
        ({"days": 5000}, "days"),
        ({"days": 3, "start": "2026-01-01"}, "days"),
        ({"end": "2026-01-01"}, "start"),
        ({"start": "2026-13-01"}, "start"),
        ({"start": "2026-01-02", "end": "2026-01-01"}, "end"),
        ({"start": "2020-01-01", "end": "2026-01-01"}, "start"),
        ({"timezone_name": "Nowhere/City"}, "timezone"),
        ({"granularity": "minute"}, "granularity"),
        ({"days": 365, "granularity": "hour"}, "granularity"),
    ],
)
def test_invalid_ranges_name_the_parameter(overrides, field):
    with pytest.raises(ApiError) as raised:
        _resolve(**overrides)
    assert raised.value.field == field


def test_previous_period_of_whole_days_keeps_local_midnight_across_dst():
    # Oct 25 .. Nov 23 in New York spans the Nov 1 change: 30 local days, 30 days + 1 hour.
    w = _resolve(days=30, timezone_name="America/New_York")
    assert w.start.isoformat() == "2026-10-25T04:00:00+00:00"
    assert w.previous_start.isoformat() == "2026-09-25T04:00:00+00:00"  # Sep 25 00:00 local
    w = _resolve(start="2026-01-01T00:00:00Z", end="2026-01-01T06:00:00Z")
    assert w.previous_start.isoformat() == "2025-12-31T18:00:00+00:00"


@pytest.mark.parametrize(
    ("start", "end", "granularity"),
    [
        ("2026-10-24", "2026-10-25", "hour"),  # 49 hours: Berlin falls back on the 25th
        ("2026-03-28", "2026-03-29", "hour"),  # 47 hours: Berlin springs forward on the 29th
        ("2026-10-24", "2026-10-26", "day"),
        ("2026-08-01", "2026-10-31", "day"),  # 92 calendar days, one of them 25 hours long
        ("2026-08-01", "2026-11-01", "month"),
    ],
)
def test_default_granularity_counts_calendar_days_across_dst(start, end, granularity):
    w = _resolve(start=start, end=end, timezone_name="Europe/Berlin")
    assert w.granularity == granularity


@pytest.mark.parametrize(
    "name",
    [
        "UTC\n",
        "UTC ",
        " UTC",
        "\tEurope/Berlin",
        "Europe/Berlin\r\n",
        "UTC\x00",
        "utc",
        "europe/berlin",
        "localtime",
        "Factory",
        "posixrules",
        "/UTC",
        "Europe/../UTC",
        " ",
    ],
)
def test_timezone_must_be_exactly_an_iana_key(name):
    with pytest.raises(ApiError) as raised:
        _resolve(timezone_name=name)
    assert raised.value.field == "timezone"
    assert repr(name) in raised.value.message


@pytest.mark.parametrize("name", ["UTC", "GMT", "Etc/UTC", "Europe/Berlin", "America/New_York"])
def test_iana_keys_are_accepted_as_spelt(name):
    assert _resolve(timezone_name=name).tz.key == name
