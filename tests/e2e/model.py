"""An independent model of the analytics answers: plain Python over the events a test ingested.

Nothing here reads the product's query code. Local dates and hours come from zoneinfo, counts
and unique visitors are counted exactly, revenue is converted with the FX rates read from
PostgreSQL as data, and rankings are sorted by the documented rule (metric descending, then key).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from functools import lru_cache
from zoneinfo import ZoneInfo

KINDS = ("clicks", "leads", "sales")
# What a ranking can be sorted by: the event kind it counts and the metric.
RANKINGS = {
    "clicks": ("clicks", "events"),
    "visitors": ("clicks", "visitors"),
    "leads": ("leads", "events"),
    "sales": ("sales", "events"),
    "revenue": ("sales", "revenue"),
}
# Rates: currency -> (decimals of its minor unit, USD per major unit).
Rates = dict[str, tuple[int, Fraction]]


@dataclass(frozen=True)
class Link:
    """A link of the workspace and the groups it is in."""

    id: int
    campaign_id: int | None
    folder_id: int | None
    tag_ids: tuple[int, ...]


@dataclass(frozen=True)
class Event:
    """One stored click, lead or sale as the model sees it (a conversion carries its click's
    dimensions)."""

    kind: str
    event_id: int
    link_id: int
    at: datetime  # UTC
    country: str
    region: str
    device: str
    browser: str
    os: str
    referrer: str
    trigger: str
    visitor: str
    is_bot: bool
    amount: int = 0
    currency: str = ""

    def value(self, dimension: str) -> str:
        """The event's value of a dimension, as the API keys it."""
        if dimension == "link":
            return str(self.link_id)
        return str(getattr(self, dimension))


@dataclass(frozen=True)
class Query:
    """The shared parameters of one request, resolved: window, zone, scope, filters."""

    tz: ZoneInfo
    first: date
    last: date
    granularity: str
    link_ids: frozenset[int] | None
    filters: tuple[tuple[str, frozenset[str], bool], ...]  # (dimension, values, exclude)
    bots: bool
    currency: str

    @property
    def start(self) -> datetime:
        """Local midnight of the first day, UTC."""
        return local_midnight(self.first, self.tz)

    @property
    def end(self) -> datetime:
        """Local midnight after the last day, UTC (exclusive)."""
        return local_midnight(self.last + timedelta(days=1), self.tz)

    @property
    def previous_start(self) -> datetime:
        """Start of the equally many local days just before the window."""
        return local_midnight(self.first - (self.last - self.first + timedelta(days=1)), self.tz)


@dataclass
class Store:
    """Everything ingested into one workspace, and the names of its groups."""

    links: list[Link]
    events: list[Event] = field(default_factory=list)
    # (group kind: folder, tag or campaign; id) -> name
    group_names: dict[tuple[str, int], str] = field(default_factory=dict)

    def of(self, kind: str) -> list[Event]:
        """The events of one kind."""
        return [e for e in self.events if e.kind == kind]


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The UTC instant at which day begins in tz."""
    return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)


def default_granularity(first: date, last: date) -> str:
    """hour for up to two days, day up to 92, month beyond (days counted on the calendar)."""
    days = (last - first).days + 1
    return "hour" if days <= 2 else "day" if days <= 92 else "month"


def transitions(tz: ZoneInfo, start: datetime, end: datetime) -> list[datetime]:
    """The UTC instants in [start, end) at which tz changes its UTC offset (minute precision)."""
    found = []
    step = timedelta(minutes=1)
    instant = start.replace(second=0, microsecond=0)
    before = (instant - step).astimezone(tz).utcoffset()
    while instant < end:
        offset = instant.astimezone(tz).utcoffset()
        if offset != before and instant >= start:
            found.append(instant)
        before = offset
        instant += step
    return found


@lru_cache(maxsize=64)
def bucket_starts(q: Query) -> list[datetime]:
    """Every bucket start (UTC) of the window: local wall-clock hours (plus, for hours, every
    offset change: the hour that follows starts at the change), local days, local ISO weeks
    (from Monday) or local months."""
    tz = q.tz
    if q.granularity == "hour":
        out = []
        instant = q.start
        while instant < q.end:
            local = instant.astimezone(tz)
            if local.minute == 0 and local.second == 0:
                out.append(instant)
            instant += timedelta(minutes=1)
        return sorted(set(out) | set(transitions(tz, q.start, q.end)))
    if q.granularity == "day":
        days = (q.last - q.first).days + 1
        return [local_midnight(q.first + timedelta(days=n), tz) for n in range(days)]
    if q.granularity == "week":
        monday = q.first - timedelta(days=q.first.weekday())
        out = []
        while local_midnight(monday, tz) < q.end:
            out.append(local_midnight(monday, tz))
            monday += timedelta(days=7)
        return out
    out = []
    month = q.first.replace(day=1)
    while local_midnight(month, tz) < q.end:
        out.append(local_midnight(month, tz))
        month = (month + timedelta(days=32)).replace(day=1)
    return out


def label(instant: datetime, tz: ZoneInfo) -> str:
    """ISO-8601 local time of an instant with the offset in force then."""
    return instant.astimezone(tz).isoformat()


def passes(e: Event, q: Query, start: datetime, end: datetime) -> bool:
    """The event is in [start, end), in scope, through the filters, and human unless bots."""
    if not start <= e.at < end or (e.is_bot and not q.bots):
        return False
    if q.link_ids is not None and e.link_id not in q.link_ids:
        return False
    return all((e.value(name) in values) != exclude for name, values, exclude in q.filters)


def select(store: Store, q: Query, previous: bool = False) -> dict[str, list[Event]]:
    """Each kind's events of the window (or of the period before it) that the query keeps."""
    start, end = (q.previous_start, q.start) if previous else (q.start, q.end)
    return {kind: [e for e in store.of(kind) if passes(e, q, start, end)] for kind in KINDS}


def convert(amount_minor: int, code: str, target: str, rates: Rates) -> Fraction:
    """amount_minor of code in major units of target, exactly."""
    minor, usd = rates[code]
    return Fraction(amount_minor, 10**minor) * usd / rates[target][1]


def revenue(sales: Iterable[Event], target: str, rates: Rates) -> Fraction:
    """Sum of the sales' amounts in target, exactly."""
    return sum((convert(s.amount, s.currency, target, rates) for s in sales), Fraction(0))


def visitors(clicks: Iterable[Event]) -> int:
    """Distinct visitors, exactly."""
    return len({c.visitor for c in clicks})


def totals(found: dict[str, list[Event]], target: str, rates: Rates) -> dict[str, object]:
    """Totals of these events: counts, unique visitors, revenue."""
    return {
        "clicks": len(found["clicks"]),
        "uniqueVisitors": visitors(found["clicks"]),
        "leads": len(found["leads"]),
        "sales": len(found["sales"]),
        "revenue": revenue(found["sales"], target, rates),
    }


def ratio(numerator: object, denominator: object) -> Fraction:
    """numerator / denominator, 0 for an empty denominator."""
    n, d = Fraction(numerator), Fraction(denominator)  # type: ignore[arg-type]
    return n / d if d else Fraction(0)


def overview(store: Store, q: Query, rates: Rates) -> dict[str, object]:
    """Totals of the window and the period before, with the conversion rates."""
    now = totals(select(store, q), q.currency, rates)
    return {
        "totals": now,
        "previous": totals(select(store, q, previous=True), q.currency, rates),
        "rates": {
            "clickToLead": ratio(now["leads"], now["clicks"]),
            "leadToSale": ratio(now["sales"], now["leads"]),
            "clickToSale": ratio(now["sales"], now["clicks"]),
        },
    }


def timeseries(store: Store, q: Query, rates: Rates) -> list[dict[str, object]]:
    """One point per bucket of the window, zeros included, every kind's metrics."""
    starts = bucket_starts(q)
    found = select(store, q)
    per_bucket: list[dict[str, list[Event]]] = [{k: [] for k in KINDS} for _ in starts]
    for kind, events in found.items():
        for e in events:
            per_bucket[bisect_right(starts, e.at) - 1][kind].append(e)
    return [
        {"time": label(s, q.tz), **totals(b, q.currency, rates)}
        for s, b in zip(starts, per_bucket, strict=True)
    ]


def metric(events: Sequence[Event], name: str, target: str, rates: Rates) -> Fraction:
    """events (count), visitors or revenue of a list of events."""
    if name == "events":
        return Fraction(len(events))
    if name == "visitors":
        return Fraction(visitors(events))
    return revenue(events, target, rates)


Keys = Callable[[Event], list[str]]


def breakdown(
    store: Store,
    q: Query,
    rates: Rates,
    keys_of: Keys,
    *,
    sort: str = "clicks",
    limit: int = 10,
    label_of: Callable[[str], str] = lambda key: key or "(unknown)",
    numeric_keys: bool = False,
) -> list[dict[str, object]]:
    """Rows per key that has events of the ranking kind, ranked by the metric descending then
    by key, the top `limit`; share = the row's metric / that metric over the whole window."""
    found = select(store, q)
    lead_kind, name = RANKINGS[sort]
    per_key: dict[str, dict[str, list[Event]]] = {}
    for kind, events in found.items():
        for e in events:
            for key in keys_of(e):
                per_key.setdefault(key, {k: [] for k in KINDS})[kind].append(e)
    whole = metric(found[lead_kind], name, q.currency, rates)
    ranked = sorted(
        (key for key, kinds in per_key.items() if kinds[lead_kind]),
        key=lambda key: (
            -metric(per_key[key][lead_kind], name, q.currency, rates),
            int(key) if numeric_keys else key,
        ),
    )
    rows = []
    for key in ranked[:limit]:
        kinds = per_key[key]
        own = metric(kinds[lead_kind], name, q.currency, rates)
        rows.append(
            {
                "key": key,
                "label": label_of(key),
                **totals(kinds, q.currency, rates),
                "share": own / whole if whole else Fraction(0),
                "_metric": own,
            }
        )
    return rows


def group_keys(store: Store, group: str) -> Keys:
    """Keys of an event by the folder, tags or campaign of its link (none: no row)."""
    by_link: dict[int, list[str]] = {}
    for link in store.links:
        if group == "tag":
            ids: Iterable[int | None] = link.tag_ids
        else:
            ids = (link.folder_id if group == "folder" else link.campaign_id,)
        by_link[link.id] = [str(i) for i in ids if i is not None]
    return lambda e: by_link[e.link_id]


def dimension_keys(dimension: str) -> Keys:
    """Key of an event by one of its dimensions."""
    return lambda e: [e.value(dimension)]


def raw_clicks(store: Store, tz: ZoneInfo, first: date, last: date) -> list[Event]:
    """Human clicks of the inclusive local dates, oldest first (ties by id)."""
    start, end = local_midnight(first, tz), local_midnight(last + timedelta(days=1), tz)
    found = [e for e in store.of("clicks") if start <= e.at < end and not e.is_bot]
    return sorted(found, key=lambda e: (e.at, e.event_id))
