"""The daily aggregates answer what ClickHouse answers, for every shape they support."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import grpc
import pytest

from services.admin import links, tenants
from services.errors import ApiError
from services.money import FxTable
from services.query import engine
from services.query.aggregates import DailyAggregates
from services.query.engine import EventQuery, Row
from services.query.predicates import DimensionFilter
from services.stores.clickhouse import ClickHouse
from services.timerange import local_midnight
from workers.rollups import RollupSettings, Workspace, refresh_workspace

ZONE = "Europe/Berlin"
TZ = ZoneInfo(ZONE)
# The job runs "now" = this instant; the data spans the DST change of 2026-10-25 and a month end.
NOW = datetime(2026, 11, 8, 12, tzinfo=UTC)

DIMENSION_VALUES = {
    "country": ("DE", "US", "FR", "JP", ""),
    "region": ("BE", "CA", "IDF", "13"),
    "city": ("Berlin", "San Francisco", "Paris", "Tōkyō", "Köln"),
    "device": ("desktop", "mobile", "tablet"),
    "browser": ("Chrome", "Firefox", "Safari", "Edge"),
    "os": ("Windows", "iOS", "Android", "Mac OS X"),
    "referrer": ("", "news.example.com", "t.co", "google.com"),
    "trigger": ("link", "qr"),
}
CONTINENT = {"DE": "EU", "US": "NA", "FR": "EU", "JP": "AS", "": ""}
DIMENSION_COLUMNS = (
    "country",
    "region",
    "city",
    "continent",
    "device",
    "browser",
    "os",
    "referrer",
)


@dataclass
class Events:
    """What was inserted for one workspace, kept for tests that add more."""

    workspace_id: int
    link_ids: list[int]
    next_id: int = 1


def _local(day: str, hour: int = 0, minute: int = 0) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, minute=minute, tzinfo=TZ).astimezone(UTC)


async def insert_events(
    ch: ClickHouse,
    events: Events,
    instants: Sequence[datetime],
    seed: int,
    leads_every: int = 7,
    sales_every: int = 13,
) -> None:
    """A click at each instant with varied dimensions, visitors and bots; some leads and sales."""
    rng = random.Random(seed)
    clicks, leads, sales = [], [], []
    for i, when in enumerate(instants):
        dims = {name: rng.choice(values) for name, values in DIMENSION_VALUES.items()}
        dims["continent"] = CONTINENT[dims["country"]]
        is_bot = 1 if rng.random() < 0.15 else 0
        link = rng.choice(events.link_ids)
        visitor = f"v{rng.randrange(40)}" if not is_bot else f"bot{rng.randrange(3)}"
        ts = int(when.timestamp())
        common = (events.workspace_id, link)
        row_dims = tuple(dims[c] for c in DIMENSION_COLUMNS) + (dims["trigger"],)
        events.next_id += 1
        clicks.append((events.next_id, *common, ts, *row_dims, visitor, is_bot))
        if i % leads_every == 0:
            events.next_id += 1
            leads.append((events.next_id, *common, ts + 60, *row_dims, visitor, is_bot))
        if i % sales_every == 0:
            events.next_id += 1
            amount = rng.randrange(100, 100_000)
            currency = rng.choice(("USD", "EUR", "JPY", "GBP"))
            sales.append(
                (events.next_id, *common, ts + 120, *row_dims, visitor, is_bot, amount, currency)
            )
    columns = ("event_id", "workspace_id", "link_id", "timestamp", *DIMENSION_COLUMNS, "trigger")
    await ch.insert("clicks", (*columns, "visitor_id", "is_bot"), clicks)
    await ch.insert("leads", (*columns, "visitor_id", "is_bot"), leads)
    await ch.insert("sales", (*columns, "visitor_id", "is_bot", "amount", "currency"), sales)


async def make_workspace(pg, name: str, zone: str = ZONE, link_count: int = 3) -> Events:
    """A business-plan workspace in zone with link_count links."""
    ws = await tenants.create_workspace(pg, name, plan="business", timezone=zone)
    made = [
        await links.create_link(
            pg, ws["id"], domain="agg.lp", slug=f"a{ws['id']}-{i}", destination_url="https://e.x"
        )
        for i in range(link_count)
    ]
    return Events(ws["id"], [m["id"] for m in made])


def spread(first: datetime, last: datetime, count: int, seed: int) -> list[datetime]:
    """count instants between first and last, plus both ends."""
    rng = random.Random(seed)
    span = int((last - first).total_seconds())
    return [first, last] + [first + timedelta(seconds=rng.randrange(span)) for _ in range(count)]


@dataclass
class Dataset:
    """The workspace the comparisons run over, and the EUR factors."""

    events: Events
    factors: dict[str, float]


@pytest.fixture(scope="module")
async def data(system, pg, ch) -> Dataset:
    events = await make_workspace(pg, "Aggregates")
    instants = spread(_local("2026-09-20"), _local("2026-11-08", 11), 1500, seed=1)
    # Right at local midnights (either side of the DST change) and a second before them.
    for day in ("2026-10-25", "2026-10-26", "2026-11-01"):
        instants += [_local(day), _local(day) - timedelta(seconds=1)]
    await insert_events(ch, events, instants, seed=2)
    await refresh_workspace(
        pg, ch, Workspace(events.workspace_id, ZONE, 1095), RollupSettings(), now=NOW
    )
    return Dataset(events, await FxTable(pg).factors("EUR"))


def _query(data: Dataset, kind: str, first: str, end: str, **fields: object) -> EventQuery:
    base = EventQuery(
        kind=kind,
        workspace_id=data.events.workspace_id,
        start=local_midnight(date.fromisoformat(first), TZ),
        end=local_midnight(date.fromisoformat(end), TZ),
        tz=ZONE,
        revenue_factors=data.factors,
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def _without_visitors(rows: list[Row]) -> list[tuple[object, ...]]:
    return [
        (r.key, r.events, pytest.approx(r.revenue), r.prev_events, pytest.approx(r.prev_revenue))
        for r in rows
    ]


async def _same(pg, ch, q: EventQuery, exact_visitors: bool = False) -> list[Row]:
    """Rows from the aggregates equal ClickHouse's, visitors at least as many (or equal)."""
    expected = await engine.run(ch, q)
    got, as_of = await DailyAggregates(pg).run(q)
    assert as_of == NOW
    assert _without_visitors(got) == _without_visitors(expected)
    for mine, theirs in zip(got, expected, strict=True):
        if exact_visitors:
            assert (mine.visitors, mine.prev_visitors) == (theirs.visitors, theirs.prev_visitors)
        else:
            assert mine.visitors >= theirs.visitors
            assert mine.prev_visitors >= theirs.prev_visitors
    return got


KINDS = [(k, b) for k in engine.EVENT_KINDS for b in (False, True)]


@pytest.mark.parametrize(("kind", "bots"), KINDS)
async def test_totals_with_previous_period(data, pg, ch, kind, bots):
    q = _query(
        data,
        kind,
        "2026-10-20",
        "2026-11-03",
        compare_start=local_midnight(date(2026, 10, 6), TZ),
        include_bots=bots,
    )
    [row] = await _same(pg, ch, q)
    assert row.events > 0 and row.prev_events > 0
    if kind == "sales":
        assert row.revenue > 0


@pytest.mark.parametrize(("kind", "bots"), KINDS)
async def test_day_timeseries_across_the_dst_change(data, pg, ch, kind, bots):
    q = _query(
        data, kind, "2026-10-20", "2026-11-09", group_by=("time",), granularity="day",
        include_bots=bots,
    )  # fmt: skip
    rows = await _same(pg, ch, q, exact_visitors=True)  # one day per row: visitors exact
    starts = [datetime.fromtimestamp(r.key, TZ) for r in rows]
    assert all(s.hour == 0 and s.minute == 0 for s in starts)
    assert {s.utcoffset() for s in starts} == {timedelta(hours=2), timedelta(hours=1)}


@pytest.mark.parametrize(("kind", "bots"), KINDS)
async def test_month_timeseries(data, pg, ch, kind, bots):
    q = _query(
        data, kind, "2026-09-01", "2026-12-01", group_by=("time",), granularity="month",
        include_bots=bots,
    )  # fmt: skip
    rows = await _same(pg, ch, q)
    assert [datetime.fromtimestamp(r.key, TZ).date().isoformat() for r in rows] == [
        "2026-09-01",
        "2026-10-01",
        "2026-11-01",
    ]


@pytest.mark.parametrize("dimension", [*DIMENSION_VALUES, "continent"])
@pytest.mark.parametrize(("kind", "bots"), KINDS)
async def test_dimension_breakdown_with_limit(data, pg, ch, dimension, kind, bots):
    q = _query(data, kind, "2026-10-01", "2026-11-08", group_by=(dimension,), include_bots=bots)
    await _same(pg, ch, replace(q, limit=3))
    await _same(pg, ch, replace(q, compare_start=local_midnight(date(2026, 9, 24), TZ)))


@pytest.mark.parametrize("order_by", ["events", "visitors", "revenue"])
async def test_breakdown_order(data, pg, ch, order_by):
    kind = "clicks" if order_by == "visitors" else "sales"
    q = _query(data, kind, "2026-10-01", "2026-11-08", group_by=("city",), order_by=order_by)
    got = await _same(pg, ch, replace(q, limit=4)) if order_by != "visitors" else None
    if order_by == "visitors":  # summed visitors may order differently; the order is still theirs
        rows, _ = await DailyAggregates(pg).run(q)
        assert [r.visitors for r in rows] == sorted((r.visitors for r in rows), reverse=True)
    else:
        assert got is not None and len(got) == 4


@pytest.mark.parametrize(("kind", "bots"), KINDS)
async def test_filters_on_the_grouped_or_only_dimension(data, pg, ch, kind, bots):
    q = _query(data, kind, "2026-10-01", "2026-11-08", include_bots=bots)
    keep = DimensionFilter("country", ("DE", "FR"))
    drop = DimensionFilter("device", ("mobile",), exclude=True)
    await _same(pg, ch, replace(q, group_by=("country",), filters=(keep,)))
    await _same(pg, ch, replace(q, filters=(keep,)))
    await _same(pg, ch, replace(q, filters=(drop,), compare_start=q.start - timedelta(days=14)))
    await _same(pg, ch, replace(q, group_by=("time",), filters=(drop,)))
    await _same(pg, ch, replace(q, group_by=("link",), filters=(keep,)))
    both = DimensionFilter("browser", ("Chrome", "Safari"))
    twice = DimensionFilter("browser", ("Safari",), exclude=True)
    await _same(pg, ch, replace(q, group_by=("browser",), filters=(both, twice)))


@pytest.mark.parametrize(("kind", "bots"), KINDS)
async def test_link_scope(data, pg, ch, kind, bots):
    first, second, _ = data.events.link_ids
    q = _query(data, kind, "2026-10-01", "2026-11-08", include_bots=bots)
    await _same(pg, ch, replace(q, group_by=("link",)))
    scoped = replace(q, link_ids=(first, second))
    await _same(pg, ch, scoped)
    await _same(pg, ch, replace(scoped, group_by=("time",), granularity="day"))
    await _same(pg, ch, replace(scoped, group_by=("os",), limit=2))
    await _same(pg, ch, replace(scoped, group_by=("time", "link"), granularity="month"))
    empty = replace(q, link_ids=())
    assert (await DailyAggregates(pg).run(empty))[0] == await engine.run(ch, empty)


@pytest.mark.parametrize(("kind", "bots"), KINDS)
async def test_folder_tag_and_campaign_groups(data, pg, ch, kind, bots):
    first, second, third = data.events.link_ids
    # Tag-like: the first link in two groups (it counts in each), the third in none.
    pairs = ((first, 901), (first, 902), (second, 902))
    q = _query(data, kind, "2026-10-01", "2026-11-08", include_bots=bots, link_groups=pairs)
    await _same(pg, ch, replace(q, group_by=("group",)))
    await _same(pg, ch, replace(q, group_by=("group",), order_by="revenue", limit=1))
    await _same(pg, ch, replace(q, group_by=("time", "group"), granularity="month"))
    await _same(pg, ch, replace(q, group_by=("group",), link_ids=(second, third)))


@pytest.mark.parametrize(("kind", "bots"), KINDS)
async def test_filters_on_links(data, pg, ch, kind, bots):
    first, second, _ = data.events.link_ids
    q = _query(data, kind, "2026-10-01", "2026-11-08", include_bots=bots)
    only = DimensionFilter("link", (first, second))
    not_first = DimensionFilter("link", (first,), exclude=True)
    await _same(pg, ch, replace(q, group_by=("link",), filters=(only,)))
    await _same(pg, ch, replace(q, group_by=("country",), filters=(not_first,), limit=2))
    keep = DimensionFilter("device", ("desktop", "tablet"))
    await _same(pg, ch, replace(q, group_by=("time",), filters=(only, keep)))


async def test_revenue_in_another_display_currency(data, pg, ch):
    q = _query(data, "sales", "2026-10-01", "2026-11-08", group_by=("country",))
    for currency in ("USD", "JPY", "GBP"):
        factors = await FxTable(pg).factors(currency)
        await _same(pg, ch, replace(q, revenue_factors=factors, order_by="revenue"))
    # A currency missing from the factors counts nothing, as in ClickHouse.
    await _same(pg, ch, replace(q, revenue_factors={"EUR": 1.0}))
    await _same(pg, ch, replace(q, revenue_factors={}))


async def test_a_range_before_any_event_is_zero(data, pg, ch):
    q = _query(data, "clicks", "2026-01-01", "2026-02-01")
    [row] = await _same(pg, ch, q)
    assert row == Row(0, 0, 0, 0.0)
    assert await _same(pg, ch, replace(q, group_by=("time",))) == []


async def _unavailable(pg, q: EventQuery, *words: str) -> str:
    with pytest.raises(ApiError) as caught:
        await DailyAggregates(pg).run(q)
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE
    assert caught.value.message.startswith("ClickHouse is unreachable")
    for word in words:
        assert word in caught.value.message
    return caught.value.message


async def test_shapes_the_aggregates_cannot_answer(data, pg):
    q = _query(data, "clicks", "2026-10-01", "2026-11-08")
    await _unavailable(pg, replace(q, group_by=("time",), granularity="hour"), "hourly")
    await _unavailable(pg, replace(q, tz="UTC"), "Europe/Berlin", "UTC")
    await _unavailable(pg, replace(q, start=q.start + timedelta(hours=3)), "midnight", "start")
    await _unavailable(pg, replace(q, end=q.end - timedelta(minutes=1)), "midnight", "end")
    late = replace(q, compare_start=q.start - timedelta(hours=5))
    await _unavailable(pg, late, "previous start")
    await _unavailable(pg, replace(q, group_by=("rule",)), "rule")
    await _unavailable(pg, replace(q, group_by=("destination",)), "destination")
    await _unavailable(pg, replace(q, group_by=("country", "device")), "country and device")
    await _unavailable(pg, replace(q, group_by=("link", "group")), "link and group")
    country = DimensionFilter("country", ("DE",))
    device = DimensionFilter("device", ("mobile",))
    await _unavailable(pg, replace(q, group_by=("os",), filters=(country,)), "country", "os")
    await _unavailable(pg, replace(q, filters=(country, device)), "country and device")
    old = replace(q, start=local_midnight(date(2018, 1, 1), TZ))
    await _unavailable(pg, old, "start on")
    # Hourly granularity only matters with time buckets.
    assert (await DailyAggregates(pg).run(replace(q, granularity="hour")))[0]


async def test_a_workspace_without_aggregates(system, pg):
    events = await make_workspace(pg, "No aggregates", link_count=1)
    start, end = (local_midnight(date(2026, 10, d), TZ) for d in (1, 8))
    q = EventQuery("clicks", events.workspace_id, start, end, tz=ZONE)
    await _unavailable(pg, q, "no daily aggregates")
