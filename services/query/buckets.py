"""Time buckets aligned in a time zone: the starts Python expects and the SQL that computes them.

An hour bucket starts at every instant whose local wall-clock time is on the hour and at every
instant where the zone's UTC offset changes; it runs to the next such instant and is labelled
with the local time of its start. Days start at local midnight (at the change when midnight is
skipped), weeks (ISO weeks) at the local midnight of their Monday, months at the local midnight
of their first day.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from services.timerange import local_midnight

HOUR = 3600

# Epoch seconds of the bucket start, computed by ClickHouse in the query's time zone. Hours use
# it only where every offset of the window is a whole number of hours (see hour_sql).
BUCKET_SQL = {
    "hour": "toUInt32(toStartOfHour({col}, %(tz)s))",
    "day": "toUInt32(toStartOfDay({col}, %(tz)s))",
    "week": "toUInt32(toDateTime(toMonday({col}, %(tz)s), %(tz)s))",
    "month": "toUInt32(toDateTime(toStartOfMonth({col}, %(tz)s), %(tz)s))",
}


def _offset(epoch: int, tz: ZoneInfo) -> int:
    """tz's UTC offset in seconds at epoch."""
    offset = datetime.fromtimestamp(epoch, tz).utcoffset()
    return 0 if offset is None else int(offset.total_seconds())


def _change_in(lo: int, hi: int, tz: ZoneInfo) -> int:
    """The instant in (lo, hi] where the offset changes from lo's (hi's must differ)."""
    before = _offset(lo, tz)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _offset(mid, tz) == before:
            lo = mid
        else:
            hi = mid
    return hi


def _hour_floor(epoch: int, tz: ZoneInfo) -> int:
    """Start of the hour bucket holding epoch."""
    offset = _offset(epoch, tz)
    on_hour = epoch - (epoch + offset) % HOUR
    if _offset(on_hour, tz) != offset:
        return _change_in(on_hour, epoch, tz)
    return on_hour


def _next_hour(epoch: int, tz: ZoneInfo) -> int:
    """Start of the hour bucket after the one starting at epoch."""
    offset = _offset(epoch, tz)
    on_hour = epoch + HOUR - (epoch + offset) % HOUR
    if _offset(on_hour, tz) != offset:
        return _change_in(epoch, on_hour, tz)
    return on_hour


def _utc(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def floor(instant: datetime, granularity: str, tz: ZoneInfo) -> datetime:
    """Start (UTC) of the bucket holding instant."""
    if granularity == "hour":
        return _utc(_hour_floor(math.floor(instant.timestamp()), tz))
    local = instant.astimezone(tz)
    if granularity == "day":
        return local_midnight(local.date(), tz)
    if granularity == "week":
        return local_midnight(local.date() - timedelta(days=local.weekday()), tz)
    return local_midnight(local.date().replace(day=1), tz)


def _next(start: datetime, granularity: str, tz: ZoneInfo) -> datetime:
    if granularity == "hour":
        return _utc(_next_hour(int(start.timestamp()), tz))
    local = start.astimezone(tz).date()
    if granularity == "day":
        return local_midnight(local + timedelta(days=1), tz)
    if granularity == "week":
        return local_midnight(local + timedelta(days=7), tz)
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


@dataclass(frozen=True)
class Offsets:
    """tz's UTC offsets over a range: the first, then (instant, offset from then on) per change."""

    initial: int
    changes: tuple[tuple[int, int], ...]

    @property
    def on_utc_hours(self) -> bool:
        """True when every hour bucket of the range starts on a UTC hour."""
        return self.initial % HOUR == 0 and all(
            at % HOUR == 0 and offset % HOUR == 0 for at, offset in self.changes
        )


@lru_cache(maxsize=256)
def _offsets(tz_name: str, first: int, last: int) -> Offsets:
    tz = ZoneInfo(tz_name)
    initial = current = _offset(first, tz)
    changes = []
    boundary = _hour_floor(first, tz)
    while boundary <= last:
        following = _next_hour(boundary, tz)
        offset = _offset(following, tz)
        if offset != current:
            changes.append((following, offset))
            current = offset
        boundary = following
    return Offsets(initial, tuple(changes))


def offsets(tz_name: str, start: datetime, end: datetime) -> Offsets:
    """The offsets and changes that decide the hour buckets of instants in [start, end)."""
    # A bucket reaches back at most an hour, and a change there may still start it.
    first = math.floor(start.timestamp()) - HOUR
    return _offsets(tz_name, first, math.ceil(end.timestamp()))


def _by_change(values: list[str], changes: tuple[tuple[int, int], ...], t: str) -> str:
    """values[i] for instants t from the i-th change on (values[0] before the first)."""
    if not changes:
        return values[0]
    branches = [f"{t} < %(bucket_at{i})s, {v}" for i, v in enumerate(values[:-1])]
    return f"multiIf({', '.join(branches)}, {values[-1]})"


def hour_sql(col: str, tz_name: str, start: datetime, end: datetime) -> tuple[str, dict[str, Any]]:
    """SQL (and its parameters) of the hour bucket start, epoch seconds, of col in [start, end)."""
    found = offsets(tz_name, start, end)
    if found.on_utc_hours:
        return BUCKET_SQL["hour"].format(col=col), {}
    # Arithmetic over the offsets Python knows: old servers round hours of 30- and 45-minute
    # offsets differently from the wall clock, and a change mid-hour starts a bucket of its own.
    params: dict[str, Any] = {"bucket_offset0": found.initial}
    for i, (at, after) in enumerate(found.changes):
        params[f"bucket_at{i}"] = at
        params[f"bucket_offset{i + 1}"] = after
    t = f"toInt64(toUInt32({col}))"
    count = len(found.changes) + 1
    offset = _by_change([f"toInt32(%(bucket_offset{i})s)" for i in range(count)], found.changes, t)
    change = _by_change(
        ["toInt64(0)", *(f"toInt64(%(bucket_at{i})s)" for i in range(count - 1))],
        found.changes,
        t,
    )
    # modulo(), not %: the driver formats the statement with Python's % operator.
    on_hour = f"{t} - modulo({t} + {offset}, {HOUR})"
    return f"toUInt32(greatest({on_hour}, {change}))", params


def bucket_sql(
    col: str, granularity: str, tz_name: str, start: datetime, end: datetime
) -> tuple[str, dict[str, Any]]:
    """SQL (and its parameters) of the bucket start, epoch seconds, of col in [start, end)."""
    if granularity == "hour":
        return hour_sql(col, tz_name, start, end)
    return BUCKET_SQL[granularity].format(col=col), {}


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
