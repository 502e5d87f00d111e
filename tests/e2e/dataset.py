"""A deterministic, small event set for one workspace, and an independent model of the answers.

`build` creates a workspace (Europe/Berlin, EUR) with campaigns, folders, tags, four links, redirect
rules and budgets through the admin helpers, and inserts a few hundred clicks with their leads and
sales straight into ClickHouse. The events span 2026-03-12 .. 2026-04-05, across the 2026-03-29
daylight-saving change, plus a handful dated "now" for the billing routes. Everything inserted is
returned as plain dicts, so tests compute what each route should answer without the product's
query code: the helpers below filter, group, bucket (zoneinfo) and convert currency (rates read
from PostgreSQL) on those lists.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from services.admin import credentials, links, tenants
from services.geo import CONTINENT_NAMES
from services.live.tables import CLICK_COLUMNS
from services.stores.clickhouse import ClickHouse

TIMEZONE = "Europe/Berlin"
CURRENCY = "EUR"
# The main window of the tests: ten local days around the 2026-03-29 change (a 23-hour day).
WINDOW_FIRST = date(2026, 3, 24)
WINDOW_LAST = date(2026, 4, 2)
WINDOW = {"start": WINDOW_FIRST.isoformat(), "end": WINDOW_LAST.isoformat()}
FIRST_EVENT = datetime(2026, 3, 12, tzinfo=UTC)
TIE_FROM, TIE_UNTIL = datetime(2026, 3, 25, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)
LAST_EVENT = datetime(2026, 4, 5, tzinfo=UTC)

# (country, region, city, continent) with a weight; "" is an unknown location.
GEO = [
    (("DE", "DE-BE", "Berlin", "EU"), 14),
    (("DE", "DE-BY", "München", "EU"), 8),
    (("DE", "DE-HH", "Hamburg", "EU"), 5),
    (("FR", "FR-IDF", "Paris", "EU"), 9),
    (("FR", "FR-ARA", "Lyon", "EU"), 4),
    (("US", "US-CA", "San Francisco", "NA"), 9),
    (("US", "US-NY", "New York", "NA"), 7),
    (("US", "US-TX", "Austin", "NA"), 3),
    (("GB", "GB-ENG", "London", "EU"), 6),
    (("JP", "JP-13", "Tokyo", "AS"), 4),
    (("BR", "BR-SP", "São Paulo", "SA"), 3),
    (("AU", "AU-NSW", "Sydney", "OC"), 2),
    (("", "", "", ""), 3),
]
CLIENTS = [
    (("desktop", "Chrome", "Windows"), 12),
    (("desktop", "Firefox", "Linux"), 4),
    (("desktop", "Safari", "macOS"), 6),
    (("desktop", "Edge", "Windows"), 3),
    (("mobile", "Safari", "iOS"), 10),
    (("mobile", "Chrome", "Android"), 9),
    (("tablet", "Safari", "iOS"), 3),
]
REFERRERS = [("", 10), ("google.com", 9), ("news.example.com", 5), ("t.co", 4), ("facebook.com", 3)]
TRIGGERS = [("link", 10), ("qr", 4), ("api", 1)]
SALE_CURRENCIES = ("USD", "EUR", "JPY", "GBP")

DIMENSION_COLUMNS = (
    "country", "region", "city", "continent", "device", "browser", "os", "referrer", "trigger",
    "visitor_id", "is_bot",
)  # fmt: skip
LEAD_COLUMNS = (
    "event_id", "workspace_id", "link_id", "click_id", "timestamp", "customer_id", "event_name",
    *DIMENSION_COLUMNS,
)  # fmt: skip
SALE_COLUMNS = (
    "event_id", "workspace_id", "link_id", "click_id", "timestamp", "customer_id", "event_name",
    "amount", "currency", "invoice_id", *DIMENSION_COLUMNS,
)  # fmt: skip

Event = dict[str, Any]


@dataclass
class Workspace:
    """A workspace with an API key, made outside the function-scoped `tenant` fixture."""

    workspace_id: int
    organization_id: int
    key: str
    plan: str
    timezone: str
    currency: str
    link_ids: list[int] = field(default_factory=list)

    @property
    def headers(self) -> dict[str, str]:
        """HTTP headers authenticating as this workspace."""
        return {"Authorization": f"Bearer {self.key}"}


@dataclass
class Dataset:
    """What `build` created and inserted, as plain Python values."""

    ws: Workspace
    links: list[dict[str, Any]]
    campaigns: dict[str, int]
    folders: dict[str, int]
    tags: dict[str, int]
    rules: list[dict[str, Any]]
    budgets: list[dict[str, Any]]
    clicks: list[Event]
    leads: list[Event]
    sales: list[Event]

    @property
    def headers(self) -> dict[str, str]:
        """HTTP headers of the dataset's workspace."""
        return self.ws.headers

    @property
    def tz(self) -> ZoneInfo:
        """The workspace's zone."""
        return ZoneInfo(self.ws.timezone)

    def link(self, slug_suffix: str) -> dict[str, Any]:
        """The link whose slug ends with slug_suffix."""
        return next(lk for lk in self.links if lk["slug"].endswith(slug_suffix))

    def events(self, kind: str) -> list[Event]:
        """The clicks, leads or sales."""
        return {"clicks": self.clicks, "leads": self.leads, "sales": self.sales}[kind]


async def make_workspace(
    pg: asyncpg.Pool,
    *,
    plan: str = "business",
    timezone: str = "UTC",
    currency: str = "USD",
    links_count: int = 1,
    scopes: tuple[str, ...] = ("analytics:read", "events:write", "workspace:update"),
) -> Workspace:
    """A fresh workspace with an API key and links_count plain links."""
    row = await tenants.create_workspace(
        pg, "Routes", plan=plan, timezone=timezone, currency=currency
    )
    key = await credentials.create_api_key(pg, row["id"], list(scopes))
    ws = Workspace(row["id"], row["organization_id"], key["key"], plan, timezone, currency)
    for i in range(links_count):
        made = await links.create_link(
            pg,
            ws.workspace_id,
            domain="r.lp",
            slug=f"ws{ws.workspace_id}-plain-{i}",
            destination_url=f"https://example.org/{ws.workspace_id}/{i}",
        )
        ws.link_ids.append(made["id"])
    return ws


def _weighted(rng: random.Random, options: list[tuple[Any, int]]) -> Any:
    values, weights = zip(*options, strict=True)
    return rng.choices(values, weights)[0]


async def build(
    pg: asyncpg.Pool,
    ch: ClickHouse,
    *,
    seed: int = 20260329,
    plan: str = "business",
    now: datetime | None = None,
) -> Dataset:
    """Create the workspace and its entities, insert the events, and return all of it."""
    now = now or datetime.now(UTC)
    ws = await make_workspace(pg, plan=plan, timezone=TIMEZONE, currency=CURRENCY, links_count=0)
    wid = ws.workspace_id
    campaigns = {
        name: await links.create_group(pg, "campaigns", wid, name)
        for name in ("Spring", "Autumn", "Dormant")
    }
    folders = {
        name: await links.create_group(pg, "folders", wid, name) for name in ("Promo", "Blog")
    }
    tags = {
        name: await links.create_group(pg, "tags", wid, name) for name in ("vip", "sale", "idle")
    }
    specs = [
        ("spring-a", campaigns["Spring"], folders["Promo"], [tags["vip"], tags["sale"]], 40),
        ("spring-b", campaigns["Spring"], folders["Promo"], [tags["vip"]], 25),
        ("autumn", campaigns["Autumn"], folders["Blog"], [], 20),
        ("plain", None, None, [tags["sale"]], 15),
    ]
    made_links = []
    for slug, campaign, folder, tag_ids, weight in specs:
        made = await links.create_link(
            pg,
            wid,
            domain="go.lp",
            slug=f"ws{wid}-{slug}",
            destination_url=f"https://shop.example.com/{slug}",
            campaign_id=campaign,
            folder_id=folder,
            tag_ids=tag_ids,
        )
        made_links.append({**made, "weight": weight})
    ws.link_ids = [lk["id"] for lk in made_links]
    link_a, link_b = made_links[0], made_links[1]

    rules = []
    for link, name, dest, conditions in (
        (link_a, "Germany or mobile", "https://shop.example.com/de",
         [("country", "eq", "DE"), ("device", "eq", "mobile")]),
        (link_a, "From the news", "https://shop.example.com/news",
         [("referrer", "contains", "news")]),
        (link_b, "English", "https://shop.example.com/en", [("country", "in", "US,GB")]),
    ):  # fmt: skip
        made = await links.create_rule(pg, wid, link["id"], name, dest, conditions)
        rules.append(
            {
                "id": made["id"],
                "link_id": link["id"],
                "name": name,
                "destination_url": dest,
                "conditions": [
                    {"id": cid, "field": f, "operator": op, "value": v}
                    for cid, (f, op, v) in zip(made["condition_ids"], conditions, strict=True)
                ],
            }
        )

    def route(link: dict[str, Any], click: Event, rng: random.Random) -> tuple[int, int, str]:
        """(rule_id, condition_id, destination_url) of a click, like a redirect would record."""
        for rule in (r for r in rules if r["link_id"] == link["id"]):
            for cond in rule["conditions"]:
                value = click[cond["field"]]
                matched = {
                    "eq": value == cond["value"],
                    "in": value in cond["value"].split(","),
                    "contains": cond["value"] in value,
                }[cond["operator"]]
                if matched:
                    return rule["id"], cond["id"], rule["destination_url"]
        # The default destination, recorded as such or left empty.
        return 0, 0, link["destination_url"] if rng.random() < 0.5 else ""

    rng = random.Random(seed)
    visitors = []
    for n in range(70):
        visitors.append(
            {
                "visitor_id": f"w{wid}-v{n:03d}",
                "geo": _weighted(rng, GEO),
                "client": _weighted(rng, CLIENTS),
                "referrer": _weighted(rng, REFERRERS),
                "is_bot": 1 if n % 13 == 5 else 0,
            }
        )
    visitors[2]["geo"] = ("", "", "", "")  # a regular visitor whose location is unknown
    link_weights = [(lk, lk["weight"]) for lk in made_links]
    clicks: list[Event] = []

    def click(visitor: dict[str, Any], link: dict[str, Any], when: datetime) -> Event:
        country, region, city, continent = visitor["geo"]
        device, browser, os_name = visitor["client"]
        if visitor["is_bot"]:
            device, browser, os_name = "desktop", "Googlebot", "Linux"
        referrer = visitor["referrer"]
        event: Event = {
            "workspace_id": wid,
            "link_id": link["id"],
            "timestamp": when,
            "country": country,
            "region": region,
            "city": city,
            "continent": continent,
            "device": device,
            "browser": browser,
            "os": os_name,
            "referrer": referrer,
            "referrer_url": f"https://{referrer}/item/{rng.randrange(100)}" if referrer else "",
            "trigger": _weighted(rng, TRIGGERS),
            "visitor_id": visitor["visitor_id"],
            "is_bot": visitor["is_bot"],
        }
        event["rule_id"], event["condition_id"], event["destination_url"] = route(link, event, rng)
        clicks.append(event)
        return event

    span = int((LAST_EVENT - FIRST_EVENT).total_seconds())
    # Repeat visitors: the first 20 visitors are three times as likely to come back.
    visitor_weights = [(v, 3 if i < 20 else 1) for i, v in enumerate(visitors)]
    for _ in range(190):
        visitor = _weighted(rng, visitor_weights)
        when = FIRST_EVENT + timedelta(seconds=rng.randrange(span))
        for _session in range(1 if rng.random() < 0.8 else 2):
            for _step in range(rng.choices((1, 2, 3, 4), (45, 28, 17, 10))[0]):
                click(visitor, _weighted(rng, link_weights), when)
                when += timedelta(seconds=rng.randrange(20, 20 * 60))
            when += timedelta(minutes=rng.randrange(40, 120))  # a new session
    # Edges: local midnights of the window and the skipped hour of 2026-03-29.
    edge_visitor = visitors[1]
    for instant in (
        "2026-03-23T22:59:59",  # 23:59:59 local on the day before the window
        "2026-03-23T23:00:00",  # 00:00 local, first second of the window
        "2026-03-29T00:59:59",  # 01:59:59 CET
        "2026-03-29T01:00:00",  # 03:00:00 CEST
        "2026-04-02T21:59:59",  # 23:59:59 CEST, last second of the window
        "2026-04-02T22:00:00",  # first second after the window
    ):
        click(edge_visitor, link_a, datetime.fromisoformat(instant).replace(tzinfo=UTC))

    # Events dated now (this billing period, and the running budget of the Spring campaign).
    month_start = now.astimezone(ZoneInfo(TIMEZONE)).replace(
        day=1, hour=0, minute=0, second=0, microsecond=0
    )
    recent = [
        max(now - timedelta(minutes=m), month_start.astimezone(UTC)).replace(microsecond=0)
        for m in range(3, 30, 4)
    ]
    recent_from = min(recent)
    for i, when in enumerate(recent):
        click(visitors[i], made_links[i % 2], when)

    clicks.sort(key=lambda e: (e["timestamp"], e["link_id"]))
    leads: list[Event] = []
    sales: list[Event] = []
    tied = False
    for n, c in enumerate(clicks):
        bot_lead = c["is_bot"] and not any(lead["is_bot"] for lead in leads)
        # The first human click dated now converts, so this billing period has every kind.
        recent_sale = (
            c["timestamp"] >= recent_from
            and not c["is_bot"]
            and not any(s["timestamp"] >= recent_from for s in sales)
        )
        if not (rng.random() < 0.22 and not c["is_bot"]) and not bot_lead and not recent_sale:
            continue
        lead = {
            **{k: c[k] for k in DIMENSION_COLUMNS},
            "workspace_id": wid,
            "link_id": c["link_id"],
            "click_ref": n,
            "timestamp": c["timestamp"] + timedelta(seconds=rng.randrange(60, 3 * 3600))
            if c["timestamp"] < recent_from
            else c["timestamp"] + timedelta(seconds=rng.randrange(10, 100)),
            "customer_id": f"cust-{wid}-{len(leads)}",
            "event_name": rng.choice(("signup", "trial")),
        }
        leads.append(lead)
        if rng.random() < 0.45 or recent_sale:
            code = rng.choice(SALE_CURRENCIES)
            amount = rng.randrange(300, 30000) if code == "JPY" else rng.randrange(500, 25000)
            delay = rng.randrange(60, 36 * 3600)
            if not tied and TIE_FROM <= lead["timestamp"] < TIE_UNTIL:
                # One sale shares its second with its lead: newest first breaks the tie by id.
                delay, tied = 0, True
            if c["timestamp"] >= recent_from:
                delay = rng.randrange(0, 50)  # recent: still in the past
            sales.append(
                {
                    **{k: c[k] for k in DIMENSION_COLUMNS},
                    "workspace_id": wid,
                    "link_id": c["link_id"],
                    "click_ref": n,
                    "timestamp": lead["timestamp"] + timedelta(seconds=delay),
                    "customer_id": lead["customer_id"],
                    "event_name": "purchase",
                    "amount": amount,
                    "currency": code,
                    "invoice_id": f"inv-{wid}-{len(sales)}",
                }
            )
    # Ids are unique across the three kinds and not in time order.
    base = 10**12 + wid * 10**6
    everything = clicks + leads + sales
    ids = rng.sample(range(base, base + 10**6), len(everything))
    for event, event_id in zip(everything, ids, strict=True):
        event["event_id"] = event_id
    for conversion in leads + sales:
        conversion["click_id"] = clicks[conversion.pop("click_ref")]["event_id"]

    await ch.insert("clicks", CLICK_COLUMNS, [tuple(e[c] for c in CLICK_COLUMNS) for e in clicks])
    await ch.insert("leads", LEAD_COLUMNS, [tuple(e[c] for c in LEAD_COLUMNS) for e in leads])
    await ch.insert("sales", SALE_COLUMNS, [tuple(e[c] for c in SALE_COLUMNS) for e in sales])

    today = now.astimezone(ZoneInfo(TIMEZONE)).date()
    budgets = []
    for campaign, amount, code, cpc, first, last in (
        ("Spring", 50000, "EUR", 25, date(2026, 3, 24), date(2026, 3, 31)),
        ("Autumn", 100000, "JPY", 15, date(2026, 3, 20), date(2026, 4, 10)),
        ("Spring", 20000, "USD", 100, today - timedelta(days=10), today + timedelta(days=19)),
        ("Autumn", 9000, "GBP", 5, date(2025, 1, 1), date(2025, 1, 31)),
    ):
        budget_id = await pg.fetchval(
            "INSERT INTO budgets (workspace_id, campaign_id, amount_minor, currency,"
            " cost_per_click_minor, period_start, period_end) VALUES ($1, $2, $3, $4, $5, $6, $7)"
            " RETURNING id",
            wid,
            campaigns[campaign],
            amount,
            code,
            cpc,
            first,
            last,
        )
        budgets.append(
            {
                "id": budget_id,
                "campaign": campaign,
                "campaign_id": campaigns[campaign],
                "amount_minor": amount,
                "currency": code,
                "cost_per_click_minor": cpc,
                "period_start": first,
                "period_end": last,
            }
        )
    return Dataset(ws, made_links, campaigns, folders, tags, rules, budgets, clicks, leads, sales)


# ---------------------------------------------------------------------------------------------
# The independent model: plain Python over the inserted lists.


def local_range(first: date, last: date, tz: ZoneInfo | str) -> tuple[datetime, datetime]:
    """[local midnight of first, local midnight after last) as UTC instants."""
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz

    def midnight(day: date) -> datetime:
        return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)

    return midnight(first), midnight(last + timedelta(days=1))


def parse_filter(text: str) -> tuple[set[str], bool]:
    """`a,b` -> ({a, b}, keep); `-a,b` -> ({a, b}, drop)."""
    exclude = text.startswith("-")
    return {v for v in text.lstrip("-").split(",") if v}, exclude


def select(
    events: Iterable[Event],
    start: datetime,
    end: datetime,
    *,
    bots: bool = False,
    link_ids: Iterable[int] | None = None,
    filters: dict[str, str] | None = None,
) -> list[Event]:
    """The events in [start, end), humans only unless bots, on link_ids, passing the filters."""
    allowed = None if link_ids is None else set(link_ids)
    parsed = {name: parse_filter(text) for name, text in (filters or {}).items()}
    out = []
    for e in events:
        if not start <= e["timestamp"] < end or (e["is_bot"] and not bots):
            continue
        if allowed is not None and e["link_id"] not in allowed:
            continue
        if any((e[name] in values) == exclude for name, (values, exclude) in parsed.items()):
            continue
        out.append(e)
    return out


async def fx_rates(pg: asyncpg.Pool) -> dict[str, tuple[int, float]]:
    """Currency -> (minor units, USD per major unit) with the latest rate on or before today."""
    rows = await pg.fetch(
        "SELECT DISTINCT ON (c.code) c.code, c.minor_units, r.usd_per_unit"
        " FROM currencies c JOIN fx_rates r ON r.currency = c.code AND r.rate_date <= current_date"
        " ORDER BY c.code, r.rate_date DESC"
    )
    return {r["code"].strip(): (r["minor_units"], float(r["usd_per_unit"])) for r in rows}


def convert(
    amount_minor: int, code: str, target: str, rates: dict[str, tuple[int, float]]
) -> float:
    """amount_minor of code in major units of target."""
    minor, usd = rates[code]
    return amount_minor / 10**minor * usd / rates[target][1]


def revenue(sales: Iterable[Event], target: str, rates: dict[str, tuple[int, float]]) -> float:
    """Sum of the sales' amounts in target."""
    return sum(convert(s["amount"], s["currency"], target, rates) for s in sales)


def visitors(clicks: Iterable[Event]) -> int:
    """Distinct visitors."""
    return len({c["visitor_id"] for c in clicks})


def totals(
    clicks: list[Event], leads: list[Event], sales: list[Event], target: str, rates: Any
) -> dict[str, Any]:
    """The Totals message of these events."""
    return {
        "clicks": len(clicks),
        "uniqueVisitors": visitors(clicks),
        "leads": len(leads),
        "sales": len(sales),
        "revenue": revenue(sales, target, rates),
    }


def ratio(numerator: int, denominator: int) -> float:
    """numerator / denominator, 0 for an empty denominator."""
    return numerator / denominator if denominator else 0.0


def bucket_start(instant: datetime, granularity: str, tz: ZoneInfo) -> datetime:
    """The local wall-clock floor of instant (hour, day, ISO week or month), as an aware datetime
    in tz."""
    local = instant.astimezone(tz)
    if granularity == "hour":
        return local.replace(minute=0, second=0, microsecond=0)
    if granularity == "day":
        return datetime(local.year, local.month, local.day, tzinfo=tz)
    if granularity == "week":
        monday = local.date() - timedelta(days=local.weekday())
        return datetime(monday.year, monday.month, monday.day, tzinfo=tz)
    return datetime(local.year, local.month, 1, tzinfo=tz)


def bucket_labels(start: datetime, end: datetime, granularity: str, tz: ZoneInfo) -> list[str]:
    """Labels of every bucket from the one holding start to end (exclusive)."""
    out = []
    current = bucket_start(start, granularity, tz)
    while current.astimezone(UTC) < end:
        out.append(current.isoformat())
        if granularity == "hour":
            current = (current.astimezone(UTC) + timedelta(hours=1)).astimezone(tz)
        elif granularity in ("day", "week"):
            day = current.date() + timedelta(days=1 if granularity == "day" else 7)
            current = datetime(day.year, day.month, day.day, tzinfo=tz)
        else:
            year, month = divmod(current.month, 12)
            current = datetime(current.year + year, month + 1, 1, tzinfo=tz)
    return out


def timeseries(
    clicks: list[Event],
    leads: list[Event],
    sales: list[Event],
    start: datetime,
    end: datetime,
    granularity: str,
    tz: ZoneInfo,
    target: str,
    rates: Any,
) -> list[dict[str, Any]]:
    """One point per bucket with every kind's metrics (events already selected)."""
    groups: dict[str, dict[str, list[Event]]] = defaultdict(lambda: defaultdict(list))
    for kind, events in (("clicks", clicks), ("leads", leads), ("sales", sales)):
        for e in events:
            groups[bucket_start(e["timestamp"], granularity, tz).isoformat()][kind].append(e)
    points = []
    for label in bucket_labels(start, end, granularity, tz):
        found = groups.get(label, {})
        points.append(
            {
                "time": label,
                **totals(
                    found.get("clicks", []),
                    found.get("leads", []),
                    found.get("sales", []),
                    target,
                    rates,
                ),
            }
        )
    return points


RANK_KINDS = {
    "clicks": ("clicks", "events"),
    "visitors": ("clicks", "visitors"),
    "leads": ("leads", "events"),
    "sales": ("sales", "events"),
    "revenue": ("sales", "revenue"),
}


def breakdown(
    events: dict[str, list[Event]],
    keys_of: Callable[[Event], list[Any]],
    *,
    rank: str = "clicks",
    limit: int = 10,
    label: Callable[[Any], str] = str,
    target: str = CURRENCY,
    rates: Any = None,
) -> list[dict[str, Any]]:
    """Rows per key, ranked by `rank` desc (ties by key), top `limit`, with every given kind's
    metrics and share = the row's ranking metric / the total of that metric over all events."""
    per_key: dict[Any, dict[str, list[Event]]] = defaultdict(lambda: defaultdict(list))
    for kind, found in events.items():
        for e in found:
            for key in keys_of(e):
                per_key[key][kind].append(e)
    lead_kind, metric = RANK_KINDS[rank]

    def value(found: list[Event]) -> float:
        if metric == "events":
            return len(found)
        if metric == "visitors":
            return visitors(found)
        return revenue(found, target, rates)

    whole = value(events.get(lead_kind, []))
    ranked = sorted(
        (key for key, kinds in per_key.items() if kinds.get(lead_kind)),
        key=lambda key: (-value(per_key[key][lead_kind]), key),
    )[:limit]
    rows = []
    for key in ranked:
        kinds = per_key[key]
        sales = kinds.get("sales", [])
        rows.append(
            {
                "key": str(key),
                "label": label(key),
                "clicks": len(kinds.get("clicks", [])),
                "uniqueVisitors": visitors(kinds.get("clicks", [])),
                "leads": len(kinds.get("leads", [])),
                "sales": len(sales),
                "revenue": revenue(sales, target, rates) if sales else 0.0,
                "share": value(kinds[lead_kind]) / whole if whole else 0.0,
            }
        )
    return rows


def key_of(column: str) -> Callable[[Event], list[Any]]:
    """The grouping key of a plain dimension: the event's value of column."""
    return lambda e: [e[column]]


def dimension_label(dimension: str) -> Callable[[Any], str]:
    """How a breakdown labels a value of a plain dimension."""
    if dimension == "continent":
        return lambda key: CONTINENT_NAMES.get(key, "(unknown)")
    return lambda key: str(key) if key not in ("", 0) else "(unknown)"


MONEY_TOLERANCE = 0.0101  # amounts are rounded to cents by the API; sums may differ in the last bit
SHARE_TOLERANCE = 2e-6


def close(got: float, expected: float, tolerance: float) -> bool:
    """got within tolerance of expected."""
    return abs(got - expected) <= tolerance


def assert_totals(
    got: dict[str, Any], expected: dict[str, Any], fields: Iterable[str] = ()
) -> None:
    """Totals (or a point) equal: counts exactly, revenue to the cent."""
    names = tuple(fields) or ("clicks", "uniqueVisitors", "leads", "sales", "revenue")
    for name in names:
        if name == "revenue":
            assert close(got[name], expected[name], MONEY_TOLERANCE), (name, got, expected)
        else:
            assert got[name] == expected[name], (name, got, expected)


def assert_rows(
    got: list[dict[str, Any]], expected: list[dict[str, Any]], fields: Iterable[str] = ()
) -> None:
    """Breakdown rows equal in order: keys, labels and counts exactly, money and shares closely."""
    assert [r["key"] for r in got] == [r["key"] for r in expected], (got, expected)
    names = tuple(fields) or (
        "label", "clicks", "uniqueVisitors", "leads", "sales", "revenue", "share",
    )  # fmt: skip
    for g, e in zip(got, expected, strict=True):
        for name in names:
            if name == "revenue":
                assert close(g[name], e[name], MONEY_TOLERANCE), (name, g, e)
            elif name == "share":
                assert close(g[name], e[name], SHARE_TOLERANCE), (name, g, e)
            else:
                assert g[name] == e[name], (name, g, e)


def histogram(values: Iterable[Any]) -> Counter[Any]:
    """Counts of each value."""
    return Counter(values)


FILTER_PARAMS = ("country", "device", "browser", "os", "trigger", "referrer", "continent")


@dataclass
class Expect:
    """The model's reading of a request's shared parameters over a dataset."""

    ds: Dataset
    start: datetime
    end: datetime
    previous_start: datetime
    tz: ZoneInfo
    currency: str
    bots: bool
    link_ids: set[int] | None
    filters: dict[str, str]
    rates: dict[str, tuple[int, float]]

    def pick(self, kind: str, previous: bool = False) -> list[Event]:
        """The kind's events of the window (or the period before it) in scope."""
        start, end = (self.previous_start, self.start) if previous else (self.start, self.end)
        return select(
            self.ds.events(kind),
            start,
            end,
            bots=self.bots,
            link_ids=self.link_ids,
            filters=self.filters,
        )

    def all(self, previous: bool = False) -> dict[str, list[Event]]:
        """Every kind's events in scope."""
        return {kind: self.pick(kind, previous) for kind in ("clicks", "leads", "sales")}

    def totals(self, previous: bool = False) -> dict[str, Any]:
        """Totals of the window (or the period before)."""
        found = self.all(previous)
        return totals(found["clicks"], found["leads"], found["sales"], self.currency, self.rates)


def expect(ds: Dataset, params: dict[str, Any], rates: dict[str, tuple[int, float]]) -> Expect:
    """What the shared parameters select: whole local days start..end, scope, filters, bots,
    and the display currency (the asked one if supported, else the workspace's)."""
    tz = ZoneInfo(params.get("timezone") or ds.ws.timezone)
    first, last = date.fromisoformat(params["start"]), date.fromisoformat(params["end"])
    start, end = local_range(first, last, tz)
    previous_start, _ = local_range(first - (last - first + timedelta(days=1)), first, tz)
    link_ids: set[int] | None = None
    for name, matches in (
        ("linkId", lambda lk, v: lk["id"] == v),
        ("campaignId", lambda lk, v: lk["campaign_id"] == v),
        ("folderId", lambda lk, v: lk["folder_id"] == v),
        ("tagId", lambda lk, v: v in lk["tag_ids"]),
    ):
        if name in params:
            found = {lk["id"] for lk in ds.links if matches(lk, int(params[name]))}
            link_ids = found if link_ids is None else link_ids & found
    asked = str(params.get("currency", "")).upper()
    return Expect(
        ds=ds,
        start=start,
        end=end,
        previous_start=previous_start,
        tz=tz,
        currency=asked if asked in rates else ds.ws.currency,
        bots=str(params.get("includeBots", "")).lower() == "true",
        link_ids=link_ids,
        filters={k: params[k] for k in FILTER_PARAMS if k in params},
        rates=rates,
    )


async def get(http, ds: Dataset, path: str, params: dict[str, Any], status: int = 200) -> Any:
    """GET path as the dataset's workspace; the `data` of a success, the body otherwise."""
    r = await http.get(path, params=params, headers=ds.headers)
    assert r.status_code == status, r.text
    body = r.json()
    if status != 200:
        assert body["success"] is False
        return body
    assert body["success"] is True
    return body["data"]
