"""The shared date-range parameters (days | start/end, timezone, granularity) made into a window."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

from services import errors, field_rules, protos

_QUERY = protos.common_pb2.AnalyticsQuery.DESCRIPTOR
GRANULARITIES = field_rules.one_of(_QUERY, "granularity")
DEFAULT_DAYS = 30
# Largest number of buckets a timeseries may have.
MAX_BUCKETS = 2500
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class Window:
    """A half-open UTC range [start, end), the period before it, and how to bucket it."""

    start: datetime
    end: datetime
    # Start of the period of equal length that ends where this one starts: as many local days
    # for a range of whole days (so DST does not shift it off midnight), else the same duration.
    previous_start: datetime
    tz: ZoneInfo
    granularity: str
    notices: tuple[str, ...] = field(default=())


@cache
def _zone_keys() -> frozenset[str]:
    # Area/Location names and UTC/GMT: not the system's `localtime`, `Factory` or bare aliases.
    return frozenset(key for key in available_timezones() if "/" in key or key in ("UTC", "GMT"))


def parse_timezone(name: str, default: str) -> ZoneInfo:
    """The IANA zone `name`, exactly as the key is spelt (or `default` when empty); 400 naming
    `timezone` for anything else (no trimming: `UTC\n` is not UTC)."""
    if not name:
        return ZoneInfo(default or "UTC")  # the workspace's, checked when it was set
    if name not in _zone_keys():
        raise errors.invalid_argument(
            "timezone",
            f"timezone {name!r} is not an IANA time zone such as Europe/Berlin or UTC",
        )
    return ZoneInfo(name)


def utc_iso(value: datetime | None) -> str | None:
    """value as ISO-8601 in UTC with a `Z` (None stays None)."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The UTC instant at which `day` begins in tz."""
    return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)


def parse_instant(name: str, value: str, tz: ZoneInfo, inclusive_end: bool = False) -> datetime:
    """An ISO date (local midnight in tz; the next for an inclusive end) or date-time, in UTC."""
    text = value.strip()
    try:
        if _DATE.match(text):
            day = date.fromisoformat(text)
            return local_midnight(day + timedelta(days=1) if inclusive_end else day, tz)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise errors.invalid_argument(
            name,
            f"{name} must be an ISO-8601 date (2025-01-31) or date-time (2025-01-31T12:00:00Z)",
        ) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    return parsed.astimezone(UTC)


def default_granularity(start: datetime, end: datetime, tz: ZoneInfo) -> str:
    """hour up to two days, day up to three months, month beyond (in wall-clock time of tz)."""
    # Local time, so a range of two calendar days is two days whatever DST does in between.
    span = end.astimezone(tz).replace(tzinfo=None) - start.astimezone(tz).replace(tzinfo=None)
    if span <= timedelta(days=2):
        return "hour"
    if span <= timedelta(days=92):
        return "day"
    return "month"


def bucket_count(start: datetime, end: datetime, granularity: str) -> int:
    """Approximate number of buckets (exact for hour and day, upper bound for week and month)."""
    seconds = (end - start).total_seconds()
    per = {"hour": 3600, "day": 86400, "week": 7 * 86400, "month": 28 * 86400}[granularity]
    return int(seconds // per) + 1


def resolve(
    *,
    days: int | None,
    start: str,
    end: str,
    timezone_name: str,
    granularity: str,
    default_timezone: str,
    plan_max_days: int,
    max_days: int,
    now: datetime,
) -> Window:
    """Validate the shared range parameters and resolve them against `now` (aware)."""
    tz = parse_timezone(timezone_name, default_timezone)
    notices: list[str] = []
    if days is not None and (start or end):
        raise errors.invalid_argument("days", "use either days or start/end, not both")
    if end and not start:
        raise errors.invalid_argument("start", "start is required when end is given")
    if start:
        begin = parse_instant("start", start, tz)
        finish = parse_instant("end", end, tz, inclusive_end=True) if end else now
        whole_days = bool(_DATE.match(start.strip()) and _DATE.match(end.strip()))
        if finish <= begin:
            raise errors.invalid_argument("end", "end must be after start")
        if finish - begin > timedelta(days=plan_max_days + 1):
            raise errors.invalid_argument(
                "start",
                f"the range spans {(finish - begin).days} days; this plan allows {plan_max_days}",
            )
    else:
        count = DEFAULT_DAYS if days is None else days
        field_rules.check_between(count, _QUERY, "days", high=max_days)
        if count > plan_max_days:
            notices.append(f"days capped at {plan_max_days} by the plan")
            count = plan_max_days
        today = now.astimezone(tz).date()
        begin = local_midnight(today - timedelta(days=count - 1), tz)
        finish = local_midnight(today + timedelta(days=1), tz)
        whole_days = True
    if whole_days:
        first, last = begin.astimezone(tz).date(), finish.astimezone(tz).date()
        previous = local_midnight(first - (last - first), tz)
    else:
        previous = begin - (finish - begin)
    chosen = granularity.strip().lower() or default_granularity(begin, finish, tz)
    if chosen not in GRANULARITIES:
        raise errors.invalid_argument(
            "granularity", f"granularity must be one of {', '.join(GRANULARITIES)}"
        )
    if bucket_count(begin, finish, chosen) > MAX_BUCKETS:
        raise errors.invalid_argument(
            "granularity",
            f"granularity={chosen} over this range gives more than {MAX_BUCKETS} buckets; "
            "choose a coarser granularity or a shorter range",
        )
    return Window(begin, finish, previous, tz, chosen, tuple(notices))
