"""Zones with 30- and 45-minute offsets, their offset changes, and bucket starts found by brute
force (minute by minute), independent of services.query.buckets."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

ZONES = (
    "Australia/Lord_Howe",  # +10:30 / +11:00
    "Pacific/Chatham",  # +12:45 / +13:45
    "Asia/Kathmandu",  # +05:45
    "Australia/Eucla",  # +08:45
    "Australia/Adelaide",  # +09:30 / +10:30
    "America/St_Johns",  # -03:30 / -02:30
    "Asia/Kolkata",  # +05:30
)
FIRST, LAST = datetime(2024, 1, 1, tzinfo=UTC), datetime(2028, 1, 1, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def offset(instant: datetime, tz: ZoneInfo) -> timedelta | None:
    """tz's UTC offset at instant."""
    return instant.astimezone(tz).utcoffset()


def changes(zone: str) -> list[datetime]:
    """Every instant of 2024-2027 at which the zone's UTC offset changes."""
    tz = ZoneInfo(zone)
    found = []
    instant = FIRST
    while instant < LAST:
        following = instant + timedelta(hours=1)
        if offset(following, tz) != offset(instant, tz):
            minute = instant + MINUTE
            while offset(minute, tz) == offset(instant, tz):
                minute += MINUTE
            found.append(minute)
        instant = following
    return found


def is_hour_boundary(instant: datetime, tz: ZoneInfo) -> bool:
    """True when the local wall clock shows a whole hour or the offset changes at instant."""
    local = instant.astimezone(tz)
    on_hour = local.minute == 0 and local.second == 0 and local.microsecond == 0
    return on_hour or offset(instant - timedelta(seconds=1), tz) != offset(instant, tz)


def hour_bucket(instant: datetime, tz: ZoneInfo) -> datetime:
    """The latest hour boundary at or before instant (offsets change on whole minutes)."""
    start = instant.replace(second=0, microsecond=0)
    while not is_hour_boundary(start, tz):
        start -= MINUTE
    return start


def first_instant_of(
    instant: datetime, tz: ZoneInfo, month: bool = False, week: bool = False
) -> datetime:
    """The first instant (a whole minute) of instant's local day, ISO week, or month."""
    local_day = instant.astimezone(tz).date()
    target = local_day.replace(day=1) if month else local_day
    if week:
        target = local_day - timedelta(days=local_day.weekday())
    start = instant.replace(second=0, microsecond=0)
    # Step back by hours while still in the period, then by minutes.
    for step in (timedelta(hours=1), MINUTE):
        while (start - step).astimezone(tz).date() >= target:
            start -= step
    return start


def every(lo: datetime, hi: datetime, minutes: int) -> Iterator[datetime]:
    """Instants from lo to hi (exclusive) every `minutes` minutes."""
    instant = lo
    while instant < hi:
        yield instant
        instant += timedelta(minutes=minutes)
