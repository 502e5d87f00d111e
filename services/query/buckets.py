"""Time buckets aligned in a time zone: the starts Python expects and the SQL that computes them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from services.timerange import local_midnight

# Epoch seconds of the bucket start, computed in the query's time zone (a constant parameter).
BUCKET_SQL = {
    "hour": "toUInt32(toStartOfHour({col}, %(tz)s))",
    "day": "toUInt32(toStartOfDay({col}, %(tz)s))",
    "month": "toUInt32(toDateTime(toStartOfMonth({col}, %(tz)s), %(tz)s))",
}


def floor(instant: datetime, granularity: str, tz: ZoneInfo) -> datetime:
    """Start (UTC) of the bucket holding instant."""
    local = instant.astimezone(tz)
    if granularity == "hour":
        return local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)
    if granularity == "day":
        return local_midnight(local.date(), tz)
    return local_midnight(local.date().replace(day=1), tz)


def _next(start: datetime, granularity: str, tz: ZoneInfo) -> datetime:
    if granularity == "hour":
        return start + timedelta(hours=1)
    local = start.astimezone(tz).date()
    if granularity == "day":
        return local_midnight(local + timedelta(days=1), tz)
    year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
    return local_midnight(local.replace(year=year, month=month, day=1), tz)


def starts(start: datetime, end: datetime, granularity: str, tz: ZoneInfo) -> list[datetime]:
    """Every bucket start (UTC) from the bucket holding start up to end (exclusive)."""
    out = []
    current = floor(start, granularity, tz)
    while current < end:
        out.append(current)
        current = _next(current, granularity, tz)
    return out


def label(instant: datetime, tz: ZoneInfo) -> str:
    """ISO-8601 of a bucket start with the zone's offset at that instant."""
    return instant.astimezone(tz).isoformat()


def whole_hour_offsets(tz_name: str, start: datetime, end: datetime) -> bool:
    """True when tz's UTC offset is a whole number of hours throughout [start, end], so its
    local hours, days and months begin on UTC hours (offsets change at most once a day)."""
    tz = ZoneInfo(tz_name)
    instant = start
    while True:
        offset = instant.astimezone(tz).utcoffset()
        if offset is None or offset.total_seconds() % 3600:
            return False
        if instant >= end:
            return True
        instant = min(instant + timedelta(days=1), end)
