"""Property test: random events and requests, every answer compared with tests/e2e/model.py.

Each example makes a fresh workspace (business plan, a random zone and currency) with links in
folders, tags and campaigns, ingests tens of clicks (timestamps around real 2026 offset changes
of zones with 30- and 45-minute offsets, random dimensions, bots) and their leads and sales in
several currencies through the live service, then asks the analytics routes with random zones,
granularities, date ranges, filters, scopes, sorts and limits, and compares every number with
the model. `make test` runs a bounded, derandomized number of examples (profile `ci`);
`make fuzz` many more (profile `fuzz`)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from hypothesis import example, given, settings
from hypothesis import strategies as st

from services import protos
from services.admin import links as admin_links
from tests.e2e import model as m

PROFILE = settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

ZONES = (
    "Australia/Lord_Howe",  # +10:30 / +11:00, a 30-minute DST shift
    "Pacific/Chatham",  # +12:45 / +13:45
    "Asia/Kathmandu",  # +05:45 all year
    "America/St_Johns",  # -03:30 / -02:30
    "Europe/Berlin",
    "UTC",
)
COUNTRIES = ("DE", "FR", "US", "NZ", "AU", "NP", "")
REGIONS = ("", "R1", "R2")
DEVICES = ("desktop", "mobile", "tablet", "bot")  # device "bot" marks a bot click
BROWSERS = ("Chrome", "Firefox", "Safari")
OSES = ("Windows", "iOS", "Android")
REFERRERS = ("", "google.com", "t.co")  # "" is stored as "(direct)"
TRIGGERS = ("", "link", "qr")  # "" is stored as "link"
BOT_AGENT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
SALE_CURRENCIES = ("USD", "EUR", "JPY", "GBP", "INR")
DISPLAY_CURRENCIES = ("USD", "EUR", "JPY", "GBP", "AUD")
CAMPAIGNS, FOLDERS, TAGS = 2, 2, 3
BREAKDOWN_DIMENSIONS = ("country", "region", "device", "referrer", "trigger", "link")
FILTER_VALUES = {
    "country": ("DE", "FR", "US", "NZ", "XX"),
    "device": DEVICES,
    "referrer": ("(direct)", "google.com", "t.co"),
    "trigger": ("link", "qr"),
}
MONEY = 0.005 + 1e-9  # amounts are answered rounded to the cent
RATIO = 5e-7 + 1e-12  # shares and conversion rates to 6 places


def _offset_changes(zone: str, year: int) -> list[datetime]:
    """The UTC instants of the year at which zone changes its offset (to the minute)."""
    tz = ZoneInfo(zone)
    found = []
    hour = datetime(year, 1, 1, tzinfo=UTC)
    while hour.year == year:
        after = hour + timedelta(hours=1)
        if hour.astimezone(tz).utcoffset() != after.astimezone(tz).utcoffset():
            found += m.transitions(tz, hour, after + timedelta(minutes=1))
        hour = after
    return found


# (zone, instant) the events cluster around: every 2026 offset change of the zones, and local
# month starts of the zones that have none.
FOCI: tuple[tuple[str, datetime], ...] = (
    *((zone, t) for zone in ZONES for t in _offset_changes(zone, 2026)),
    ("Asia/Kathmandu", datetime(2026, 3, 31, 18, 15, tzinfo=UTC)),  # 2026-04-01 00:00 local
    ("UTC", datetime(2026, 8, 1, tzinfo=UTC)),
)


@dataclass(frozen=True)
class LinkSpec:
    """A link's campaign, folder and tags (indexes into the workspace's groups)."""

    campaign: int | None
    folder: int | None
    tags: tuple[int, ...]


@dataclass(frozen=True)
class ClickSpec:
    """A click: its link, time as seconds from the focus, dimensions, and how it is sent."""

    link: int
    offset: int
    country: str
    region: str
    device: str
    browser: str
    os: str
    referrer: str
    trigger: str
    visitor: int | None  # None: the click names no visitor
    bot_agent: bool  # sent with a crawler's user agent (a bot whatever its device)
    stamp: str  # "Z", "utc", "naive" or a zone: how its timestamp is written


@dataclass(frozen=True)
class ConversionSpec:
    """A lead or a sale of one of the clicks, some seconds after it."""

    click: int
    kind: str
    delay: int
    amount: int
    currency: str


@dataclass(frozen=True)
class RequestSpec:
    """The parameters of one round of requests (each route takes those it honours)."""

    zone: str | None  # None: the workspace's
    shift: int  # first day, relative to the focus's local date
    days: int
    granularity: str | None  # None: the default for the range
    scope: tuple[tuple[str, int], ...]
    filters: tuple[tuple[str, tuple[str, ...], bool], ...]
    bots: bool | None
    currency: str | None
    limit: int | None
    sort: str | None
    dimension: str | None
    by: str | None
    link: int


@dataclass(frozen=True)
class Scenario:
    """One example: a workspace, its events and the requests asked."""

    focus: datetime
    focus_zone: str
    zone: str
    currency: str
    links: tuple[LinkSpec, ...]
    clicks: tuple[ClickSpec, ...]
    conversions: tuple[ConversionSpec, ...]
    requests: tuple[RequestSpec, ...]


link_specs = st.builds(
    LinkSpec,
    campaign=st.none() | st.integers(0, CAMPAIGNS - 1),
    folder=st.none() | st.integers(0, FOLDERS - 1),
    tags=st.lists(st.integers(0, TAGS - 1), max_size=2, unique=True).map(tuple),
)
offsets = st.one_of(
    st.sampled_from((0, -1, 1, -1800, 1800, -2700, 2700, -3600, 3600, 5400)),
    st.integers(-3 * 3600, 3 * 3600),
    st.integers(-4 * 86400, 4 * 86400),
    st.integers(-40 * 86400, 40 * 86400),
)


def click_specs(links: int) -> st.SearchStrategy[ClickSpec]:
    """Clicks on one of `links` links."""
    return st.builds(
        ClickSpec,
        link=st.integers(0, links - 1),
        offset=offsets,
        country=st.sampled_from(COUNTRIES),
        region=st.sampled_from(REGIONS),
        device=st.sampled_from(DEVICES),
        browser=st.sampled_from(BROWSERS),
        os=st.sampled_from(OSES),
        referrer=st.sampled_from(REFERRERS),
        trigger=st.sampled_from(TRIGGERS),
        visitor=st.none() | st.integers(0, 5),
        bot_agent=st.integers(0, 3).map(lambda n: n == 3),
        stamp=st.sampled_from(("Z", "utc", "naive", *ZONES)),
    )


def conversion_specs(clicks: int) -> st.SearchStrategy[ConversionSpec]:
    """Leads and sales of one of `clicks` clicks."""
    return st.builds(
        ConversionSpec,
        click=st.integers(0, clicks - 1),
        kind=st.sampled_from(("lead", "sale")),
        delay=st.one_of(st.integers(0, 3 * 3600), st.integers(0, 3 * 86400)),
        amount=st.one_of(st.integers(0, 100_000), st.sampled_from((100, 2500))),
        currency=st.sampled_from(SALE_CURRENCIES),
    )


@st.composite
def request_specs(draw: st.DrawFn, links: int, focus_zone: str) -> RequestSpec:
    """A round of request parameters."""
    days = draw(st.one_of(st.integers(1, 3), st.integers(1, 12), st.integers(20, 70)))
    grains = ("hour", "day", "week", "month", None) if days <= 7 else ("day", "week", "month", None)
    sizes = {"linkId": links, "campaignId": CAMPAIGNS, "folderId": FOLDERS, "tagId": TAGS}
    scope = draw(st.dictionaries(st.sampled_from(tuple(sizes)), st.integers(0, 3), max_size=2))
    filters = draw(
        st.lists(
            st.sampled_from(tuple(FILTER_VALUES)).flatmap(
                lambda name: st.tuples(
                    st.just(name),
                    st.lists(
                        st.sampled_from(FILTER_VALUES[name]), min_size=1, max_size=2, unique=True
                    ).map(tuple),
                    st.booleans(),
                )
            ),
            max_size=2,
            unique_by=lambda f: f[0],
        )
    )
    return RequestSpec(
        zone=draw(st.none() | st.just(focus_zone) | st.sampled_from(ZONES)),
        shift=draw(st.integers(-1, 0) | st.integers(-3, 1) if days < 20 else st.integers(-45, 0)),
        days=days,
        granularity=draw(st.sampled_from(grains)),
        scope=tuple(sorted((name, index % sizes[name]) for name, index in scope.items())),
        filters=tuple(filters),
        bots=draw(st.sampled_from((None, True, False))),
        currency=draw(st.none() | st.sampled_from(DISPLAY_CURRENCIES)),
        limit=draw(st.none() | st.integers(1, 4)),
        sort=draw(st.none() | st.sampled_from(tuple(m.RANKINGS))),
        dimension=draw(st.none() | st.sampled_from(BREAKDOWN_DIMENSIONS)),
        by=draw(st.none() | st.sampled_from(("device", "browser", "os"))),
        link=draw(st.integers(0, links - 1)),
    )


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    """A workspace with links, tens of events around one focus instant, and request rounds."""
    focus_zone, focus = draw(st.sampled_from(FOCI))
    links = draw(st.lists(link_specs, min_size=1, max_size=4).map(tuple))
    clicks = draw(st.lists(click_specs(len(links)), min_size=1, max_size=30).map(tuple))
    conversions = draw(st.lists(conversion_specs(len(clicks)), max_size=12).map(tuple))
    rounds = st.lists(request_specs(len(links), focus_zone), min_size=1, max_size=2)
    return Scenario(
        focus=focus,
        focus_zone=focus_zone,
        zone=draw(st.just(focus_zone) | st.sampled_from(ZONES)),
        currency=draw(st.sampled_from(DISPLAY_CURRENCIES)),
        links=links,
        clicks=clicks,
        conversions=conversions,
        requests=tuple(draw(rounds)),
    )


# ---------------------------------------------------------------------------------------------
# Making the workspace and ingesting the events, recording what the model needs.


@dataclass
class Made:
    """The workspace an example made: its tenant, entity ids, and the model's copy of it all."""

    tenant: Any
    campaigns: list[int]
    folders: list[int]
    tags: list[int]
    store: m.Store

    @property
    def link_ids(self) -> list[int]:
        """Ids of the links, in the scenario's order."""
        return [link.id for link in self.store.links]


async def make_workspace(pg: asyncpg.Pool, tenant: Callable[..., Any], scn: Scenario) -> Made:
    """A fresh business workspace with the scenario's groups and links."""
    t = await tenant(plan="business", timezone=scn.zone, currency=scn.currency, links_count=0)
    wid = t.workspace_id
    names: dict[tuple[str, int], str] = {}

    async def groups(table: str, kind: str, count: int) -> list[int]:
        made = []
        for i in range(count):
            name = f"{kind.capitalize()} {i}"
            made.append(await admin_links.create_group(pg, table, wid, name))
            names[kind, made[-1]] = name
        return made

    campaigns = await groups("campaigns", "campaign", CAMPAIGNS)
    folders = await groups("folders", "folder", FOLDERS)
    tags = await groups("tags", "tag", TAGS)
    links = []
    for i, spec in enumerate(scn.links):
        campaign = None if spec.campaign is None else campaigns[spec.campaign]
        folder = None if spec.folder is None else folders[spec.folder]
        tag_ids = [tags[n] for n in spec.tags]
        row = await admin_links.create_link(
            pg,
            wid,
            domain="m.lp",
            slug=f"m{wid}-{i}",
            destination_url=f"https://example.com/{i}",
            campaign_id=campaign,
            folder_id=folder,
            tag_ids=tag_ids,
        )
        links.append(m.Link(row["id"], campaign, folder, tuple(tag_ids)))
    return Made(t, campaigns, folders, tags, m.Store(links, group_names=names))


def stamp_text(at: datetime, how: str) -> str:
    """An ISO-8601 text of the instant: Z, +00:00, no offset (UTC) or a zone's local time."""
    if how == "Z":
        return at.strftime("%Y-%m-%dT%H:%M:%SZ")
    if how == "utc":
        return at.isoformat()
    if how == "naive":
        return at.replace(tzinfo=None).isoformat()
    return at.astimezone(ZoneInfo(how)).isoformat()


def click_event(spec: ClickSpec, link_id: int, at: datetime) -> Any:
    """The ClickEvent message of a click spec."""
    return protos.live_pb2.ClickEvent(
        link_id=link_id,
        timestamp=stamp_text(at, spec.stamp),
        country=spec.country,
        region=spec.region,
        device=spec.device,
        browser=spec.browser,
        os=spec.os,
        referrer=spec.referrer,
        trigger=spec.trigger,
        visitor_id="" if spec.visitor is None else f"visitor-{spec.visitor}",
        user_agent=BOT_AGENT if spec.bot_agent else "",
    )


def stored_click(spec: ClickSpec, event_id: int, link_id: int, at: datetime) -> m.Event:
    """The click as the product's rules store it (defaults filled, bot flag set)."""
    if spec.visitor is not None:
        visitor = f"visitor-{spec.visitor}"
    else:  # a hash of address and user agent, else the event itself
        visitor = f"agent:{BOT_AGENT}" if spec.bot_agent else f"anon:{event_id}"
    return m.Event(
        kind="clicks",
        event_id=event_id,
        link_id=link_id,
        at=at,
        country=spec.country,
        region=spec.region,
        device=spec.device,
        browser=spec.browser,
        os=spec.os,
        referrer=spec.referrer or "(direct)",
        trigger=spec.trigger or "link",
        visitor=visitor,
        is_bot=spec.device == "bot" or spec.bot_agent,
    )


async def ingest(system: Any, made: Made, scn: Scenario) -> None:
    """Send the clicks (one gRPC Ingest) and their leads and sales, wait until all are stored."""
    latest = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=2)
    times = [min(scn.focus + timedelta(seconds=c.offset), latest) for c in scn.clicks]
    links = [made.link_ids[c.link] for c in scn.clicks]
    metadata = made.tenant.metadata
    async with system.channel("live") as channel:
        stub = protos.live_pb2_grpc.LiveServiceStub(channel)
        answer = await stub.Ingest(
            protos.live_pb2.IngestRequest(
                events=[
                    click_event(c, link, at)
                    for c, link, at in zip(scn.clicks, links, times, strict=True)
                ]
            ),
            metadata=metadata,
        )
        clicks = [
            stored_click(c, event_id, link, at)
            for c, event_id, link, at in zip(
                scn.clicks, answer.event_ids, links, times, strict=True
            )
        ]
        made.store.events += clicks
        for n, conv in enumerate(scn.conversions):
            click = clicks[conv.click]
            at = min(click.at + timedelta(seconds=conv.delay), latest)
            if conv.kind == "lead":
                answer = await stub.TrackLead(
                    protos.live_pb2.LeadEvent(
                        click_id=click.event_id,
                        customer_id=f"customer-{n}",
                        timestamp=stamp_text(at, "Z"),
                    ),
                    metadata=metadata,
                )
                kind, amount, currency = "leads", 0, ""
            else:
                answer = await stub.TrackSale(
                    protos.live_pb2.SaleEvent(
                        click_id=click.event_id,
                        amount=conv.amount,
                        currency=conv.currency,
                        timestamp=stamp_text(at, "Z"),
                    ),
                    metadata=metadata,
                )
                kind, amount, currency = "sales", conv.amount, conv.currency
            made.store.events.append(
                m.Event(
                    **{
                        **click.__dict__,
                        "kind": kind,
                        "event_id": answer.event_ids[0],
                        "at": at,
                        "amount": amount,
                        "currency": currency,
                    }
                )
            )
    await system.drained()


# ---------------------------------------------------------------------------------------------
# Requests: the parameters each route honours, and the model's reading of them.


def request_days(scn: Scenario, spec: RequestSpec, zone: str) -> tuple[date, date]:
    """First and last local day of the request, around the focus's local date in zone."""
    first = scn.focus.astimezone(ZoneInfo(zone)).date() + timedelta(days=spec.shift)
    return first, first + timedelta(days=spec.days - 1)


def scope_ids(made: Made, spec: RequestSpec) -> dict[str, int]:
    """The request's scope parameters as entity ids."""
    tables = {
        "linkId": made.link_ids,
        "campaignId": made.campaigns,
        "folderId": made.folders,
        "tagId": made.tags,
    }
    return {name: tables[name][index] for name, index in spec.scope}


def scoped_links(made: Made, scope: dict[str, int]) -> frozenset[int] | None:
    """The links every scope parameter keeps (None: no scope)."""
    if not scope:
        return None
    keep = {
        "linkId": lambda lk, v: lk.id == v,
        "campaignId": lambda lk, v: lk.campaign_id == v,
        "folderId": lambda lk, v: lk.folder_id == v,
        "tagId": lambda lk, v: v in lk.tag_ids,
    }
    return frozenset(
        lk.id
        for lk in made.store.links
        if all(keep[name](lk, value) for name, value in scope.items())
    )


@dataclass(frozen=True)
class Asked:
    """A request's shared parameters and the model's Query for them."""

    params: dict[str, str]
    query: m.Query


def shared(
    made: Made,
    scn: Scenario,
    spec: RequestSpec,
    rates: m.Rates,
    *,
    link: int | None = None,
    granularity: bool = False,
) -> Asked:
    """Shared parameters (range, zone, currency, bots, filters, and the scope unless the route is
    a link's) with the model's reading: a link route's scope is its link."""
    zone = spec.zone or scn.zone
    first, last = request_days(scn, spec, zone)
    params = {"start": first.isoformat(), "end": last.isoformat()}
    if spec.zone:
        params["timezone"] = spec.zone
    if spec.currency:
        params["currency"] = spec.currency
    if spec.bots is not None:
        params["includeBots"] = "true" if spec.bots else "false"
    for name, values, exclude in spec.filters:
        params[name] = ("-" if exclude else "") + ",".join(values)
    if granularity and spec.granularity:
        params["granularity"] = spec.granularity
    if link is None:
        scope = scope_ids(made, spec)
        params.update({name: str(value) for name, value in scope.items()})
        link_ids = scoped_links(made, scope)
    else:
        link_ids = frozenset({link})
    query = m.Query(
        tz=ZoneInfo(zone),
        first=first,
        last=last,
        granularity=spec.granularity or m.default_granularity(first, last),
        link_ids=link_ids,
        filters=tuple((name, frozenset(values), exclude) for name, values, exclude in spec.filters),
        bots=bool(spec.bots),
        currency=spec.currency or scn.currency,
    )
    assert query.currency in rates
    return Asked(params, query)


# ---------------------------------------------------------------------------------------------
# Comparing answers with the model.


def diff_totals(got: dict[str, Any], want: dict[str, Any], where: str) -> list[str]:
    """Counts equal, revenue to the cent."""
    out = []
    for name, value in want.items():
        if name.startswith("_") or name in ("time", "key", "label", "share"):
            continue
        if name == "revenue":
            if abs(got[name] - float(value)) > MONEY:
                out.append(f"{where}.revenue: got {got[name]}, model {float(value):.6f}")
        elif got[name] != value:
            out.append(f"{where}.{name}: got {got[name]}, model {value}")
    return out


def diff_ratio(got: float, want: Fraction, where: str) -> list[str]:
    """A share or rate to 6 places."""
    return [] if abs(got - float(want)) <= RATIO else [f"{where}: got {got}, model {float(want)}"]


def diff_meta(meta: dict[str, Any], q: m.Query, *, previous: bool = False) -> list[str]:
    """The window, zone and currency the answer says it used."""
    want = {
        "timezone": q.tz.key,
        "currency": q.currency,
        "start": m.label(q.start, q.tz),
        "end": m.label(q.end, q.tz),
    }
    if previous:
        want["previousStart"] = m.label(q.previous_start, q.tz)
        want["previousEnd"] = want["start"]
    else:
        want["previousStart"] = want["previousEnd"] = None  # absent values are null
    if meta.get("source") == "clickhouse":
        want["dataAsOf"] = None
    return [
        f"meta.{name}: got {meta.get(name, '(no key)')!r}, model {value!r}"
        for name, value in want.items()
        if meta.get(name, "(no key)") != value
    ]


def diff_points(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> list[str]:
    """Every bucket's label and metrics, zeros included."""
    labels, expected = [p["time"] for p in got], [p["time"] for p in want]
    if labels != expected:
        at = next(
            (i for i, (a, b) in enumerate(zip(labels, expected, strict=False)) if a != b),
            min(len(labels), len(expected)),
        )
        return [
            f"bucket labels differ from #{at} ({len(labels)} buckets, model {len(expected)}):"
            f" got {labels[max(at - 1, 0) : at + 3]}, model {expected[max(at - 1, 0) : at + 3]}"
        ]
    out = []
    for g, w in zip(got, want, strict=True):
        out += diff_totals(g, w, f"point {w['time']}")
    return out


def diff_rows(got: list[dict[str, Any]], ranked: list[dict[str, Any]], limit: int) -> list[str]:
    """Rows in the model's order (metric descending, then key), the top `limit`. Revenue sums
    that agree to 1e-9 may come in either order: the engine sums floats."""
    want = ranked[:limit]
    got_keys, want_keys = [r["key"] for r in got], [r["key"] for r in want]
    by_key = {r["key"]: r for r in ranked}
    if got_keys != want_keys:
        near = len(got_keys) == len(want_keys) and all(
            k in by_key and abs(by_key[k]["_metric"] - w["_metric"]) <= Fraction(1, 10**9)
            for k, w in zip(got_keys, want, strict=True)
        )
        if not near or len(set(got_keys)) != len(got_keys):
            return [
                f"row keys: got {got_keys}, model {want_keys}"
                f" (model metrics {[(r['key'], float(r['_metric'])) for r in ranked]})"
            ]
    out = []
    for row in got:
        w = by_key[row["key"]]
        where = f"row {row['key']}"
        if row["label"] != w["label"]:
            out.append(f"{where}.label: got {row['label']!r}, model {w['label']!r}")
        out += diff_totals(row, w, where)
        out += diff_ratio(row["share"], w["share"], f"{where}.share")
    return out


def mismatch_type(route: str) -> type[AssertionError]:
    """An AssertionError subclass per route, so Hypothesis shrinks and reports each apart."""
    name = "".join(part.capitalize() for part in route.replace("/", "-").split("-")) or "Route"
    return type(f"{name}Mismatch", (AssertionError,), {})


MISMATCH: dict[str, type[AssertionError]] = {}


@dataclass(frozen=True)
class Check:
    """One request and how to compare its answer with the model."""

    route: str
    path: str
    params: dict[str, str]
    compare: Callable[[Any], list[str]]
    body: dict[str, Any] | None = None


def checks(made: Made, scn: Scenario, spec: RequestSpec, rates: m.Rates) -> list[Check]:
    """The routes asked with this round's parameters."""
    store = made.store
    link = made.link_ids[spec.link]
    out: list[Check] = []

    def overview(route: str, path: str, asked: Asked) -> None:
        q = asked.query

        def compare(data: Any) -> list[str]:
            want = m.overview(store, q, rates)
            found = diff_totals(data["totals"], want["totals"], "totals")  # type: ignore[arg-type]
            found += diff_totals(data["previous"], want["previous"], "previous")  # type: ignore[arg-type]
            for name, value in want["rates"].items():  # type: ignore[attr-defined]
                found += diff_ratio(data["rates"][name], value, f"rates.{name}")
            return found + diff_meta(data["meta"], q, previous=True)

        out.append(Check(route, path, asked.params, compare))

    def timeseries(route: str, path: str, asked: Asked, field: str = "points") -> None:
        q = asked.query

        def compare(data: Any) -> list[str]:
            found = diff_points(data[field], m.timeseries(store, q, rates))
            if data["meta"]["granularity"] != q.granularity:
                found.append(
                    f"meta.granularity: got {data['meta']['granularity']}, model {q.granularity}"
                )
            return found + diff_meta(data["meta"], q)

        out.append(Check(route, path, asked.params, compare))

    def breakdown(
        route: str,
        path: str,
        asked: Asked,
        dimension: str,
        keys_of: m.Keys,
        *,
        sort: str = "clicks",
        label_of: Callable[[str], str] = lambda key: key or "(unknown)",
        numeric: bool = False,
        field: str = "rows",
    ) -> None:
        q = asked.query
        params = dict(asked.params)
        if spec.limit is not None:
            params["limit"] = str(spec.limit)
        limit = spec.limit or 10

        def compare(data: Any) -> list[str]:
            ranked = m.breakdown(
                store, q, rates, keys_of, sort=sort, limit=10**6, label_of=label_of,
                numeric_keys=numeric,
            )  # fmt: skip
            found = diff_rows(data[field], ranked, limit)
            if data.get("dimension") != dimension:
                found.append(f"dimension: got {data.get('dimension')!r}, model {dimension!r}")
            return found + diff_meta(data["meta"], q)

        out.append(Check(route, path, params, compare))

    base = "/api/analytics"
    ws = shared(made, scn, spec, rates)
    on_link = shared(made, scn, spec, rates, link=link)
    series = shared(made, scn, spec, rates, granularity=True)
    link_series = shared(made, scn, spec, rates, link=link, granularity=True)

    overview("workspace/overview", f"{base}/workspace/overview", ws)
    overview("{linkId}/summary", f"{base}/{link}/summary", on_link)
    timeseries("workspace/timeseries", f"{base}/workspace/timeseries", series)
    timeseries("{linkId}/timeseries", f"{base}/{link}/timeseries", link_series)
    timeseries("leads/timeseries", f"{base}/leads/timeseries", series)
    timeseries("sales/timeseries", f"{base}/sales/timeseries", series)
    breakdown("{linkId}/geo", f"{base}/{link}/geo", on_link, "country", m.dimension_keys("country"))
    breakdown(
        "workspace/regions", f"{base}/workspace/regions", ws, "region", m.dimension_keys("region")
    )

    by = spec.by or "device"
    devices = Asked({**ws.params, **({"by": spec.by} if spec.by else {})}, ws.query)
    breakdown("workspace/devices", f"{base}/workspace/devices", devices, by, m.dimension_keys(by))

    sort = spec.sort or "clicks"
    ranked = Asked({**ws.params, **({"sort": spec.sort} if spec.sort else {})}, ws.query)
    for route, group in (
        ("workspace/top-folders", "folder"),
        ("workspace/top-tags", "tag"),
        ("workspace/campaigns/ranking", "campaign"),
    ):
        breakdown(
            route, f"{base}/{route}", ranked, group, m.group_keys(store, group), sort=sort,
            label_of=lambda key, group=group: store.group_names[group, int(key)],
            numeric=True,
        )  # fmt: skip

    dimension = spec.dimension or "country"
    by_dimension = Asked(
        {**ws.params, **({"dimension": spec.dimension} if spec.dimension else {})}, ws.query
    )
    for route, rank in (("leads/breakdown", "leads"), ("sales/breakdown", "revenue")):
        breakdown(
            route, f"{base}/{route}", by_dimension, dimension, m.dimension_keys(dimension),
            sort=rank, numeric=dimension == "link",
        )  # fmt: skip
    if spec.dimension:
        breakdown(
            "composite", f"{base}/composite", by_dimension, dimension,
            m.dimension_keys(dimension), numeric=dimension == "link",
        )  # fmt: skip
    else:
        timeseries("composite", f"{base}/composite", series)

    out.append(raw_events_check(made, scn, spec))
    return out


def raw_events_check(made: Made, scn: Scenario, spec: RequestSpec) -> Check:
    """POST /v1/analytics over the round's days in the workspace's zone: its human clicks."""
    tz = ZoneInfo(scn.zone)
    first, last = request_days(scn, spec, scn.zone)

    def compare(body: Any) -> list[str]:
        want = m.raw_clicks(made.store, tz, first, last)
        got = [(e["id"], e["created_at"]) for e in body["data"]]
        expected = [(e.event_id, m.label(e.at, tz)) for e in want]
        if got == expected:
            return []
        bots = {e.event_id for e in made.store.of("clicks") if e.is_bot}
        return [
            f"raw clicks (id, created_at): got {got}, model {expected};"
            f" bots among the answer: {sorted(i for i, _ in got if i in bots)}"
        ]

    body = {"start": first.isoformat(), "end": last.isoformat(), "limit": 1000}
    return Check("v1/analytics", "/v1/analytics", {}, compare, body=body)


async def ask(http: Any, made: Made, check: Check) -> str:
    """Send one request; every difference from the model ("" when none), with the request."""
    headers = made.tenant.headers
    if check.body is not None:
        r = await http.post(check.path, json=check.body, headers=headers)
    else:
        r = await http.get(check.path, params=check.params, headers=headers)
    request = f"{r.request.method} {r.request.url}" + (f" {check.body}" if check.body else "")
    if r.status_code != 200:
        return f"{request}: HTTP {r.status_code} {r.text}"
    body = r.json()
    found = check.compare(body if check.body is not None else body["data"])
    if not found:
        return ""
    more = f"\n    … {len(found) - 12} more" if len(found) > 12 else ""
    return request + "".join(f"\n    {line}" for line in found[:12]) + more


def fail(failures: list[tuple[str, str]]) -> None:
    """Raise the first failing route's mismatch, listing every route that differed."""
    if failures:
        route = failures[0][0]
        kind = MISMATCH.setdefault(route, mismatch_type(route))
        raise kind("\n".join(f"[{name}] {text}" for name, text in failures))


async def fx(pg: asyncpg.Pool) -> m.Rates:
    """The latest FX rate on or before today of every supported currency, as PostgreSQL has it."""
    rows = await pg.fetch(
        "SELECT DISTINCT ON (c.code) c.code, c.minor_units, r.usd_per_unit"
        " FROM currencies c JOIN fx_rates r ON r.currency = c.code AND r.rate_date <= current_date"
        " ORDER BY c.code, r.rate_date DESC"
    )
    return {
        r["code"].strip(): (r["minor_units"], Fraction(Decimal(r["usd_per_unit"]))) for r in rows
    }


def edge(
    zone: str,
    focus: str,
    offsets: tuple[int, ...],
    *,
    links: tuple[LinkSpec, ...] = (LinkSpec(None, None, ()),),
    conversions: tuple[ConversionSpec, ...] = (),
    **request: Any,
) -> Scenario:
    """A hand-picked example: clicks at offsets (seconds) from an instant, one round asked in
    the zone (hour buckets of the focus's local day unless request says otherwise)."""
    at = datetime.fromisoformat(focus)
    clicks = tuple(
        ClickSpec(n % len(links), o, "DE", "", "mobile" if n % 3 else "bot", "Chrome", "iOS",
                  "", "", n % 4, False, "Z")
        for n, o in enumerate(offsets)
    )  # fmt: skip
    round_ = {
        "zone": None, "shift": 0, "days": 1, "granularity": "hour", "scope": (), "filters": (),
        "bots": None, "currency": None, "limit": None, "sort": None, "dimension": None,
        "by": None, "link": 0, **request,
    }  # fmt: skip
    return Scenario(at, zone, zone, "USD", links, clicks, conversions, (RequestSpec(**round_),))


# The edges the product's rules name, asked in every run before the random examples.
EDGES = (
    # Lord Howe springs forward at 02:00+10:30: 01:00+10:30, 02:30+11:00, 03:00+11:00.
    edge("Australia/Lord_Howe", "2026-10-03T15:30:00+00:00", (-1, 0, 1799, 1800)),
    # ... and falls back at 02:00+11:00: 01:00+11:00, 01:30+10:30, 02:00+10:30.
    edge("Australia/Lord_Howe", "2026-04-04T15:00:00+00:00", (-1800, -1, 0, 1799, 1800)),
    # Chatham: 02:00+12:45 (45 minutes), 03:45+13:45 (15 minutes), 04:00+13:45.
    edge("Pacific/Chatham", "2026-09-26T14:00:00+00:00", (-1, 0, 899, 900)),
    # Two whole days are hours by default, also when one of them has 25 hours.
    edge(
        "Europe/Berlin",
        "2026-10-25T01:00:00+00:00",
        (-3600, 0, 1800),
        shift=-1,
        days=2,
        granularity=None,
    ),  # fmt: skip
    # sort ranks folders and tags by that metric: more clicks in one, more leads in the other.
    edge(
        "UTC",
        "2026-08-01T00:00:00+00:00",
        (0, 60, 120, 180, 240),
        links=(LinkSpec(0, 0, (0,)), LinkSpec(1, 1, (1,))),
        conversions=(ConversionSpec(1, "lead", 10, 0, ""),),
        days=2,
        granularity="day",
        sort="leads",
    ),  # fmt: skip
)


def with_edges(test: Any) -> Any:
    """The test with each of EDGES as an explicit example."""
    for scn in reversed(EDGES):
        test = example(scn=scn)(test)
    return test


@PROFILE
@with_edges
@given(scn=scenarios())
async def test_answers_match_the_model(system, http, pg, tenant, scn: Scenario) -> None:
    rates = await fx(pg)
    made = await make_workspace(pg, tenant, scn)
    await ingest(system, made, scn)
    failures = []
    for spec in scn.requests:
        for check in checks(made, scn, spec, rates):
            if found := await ask(http, made, check):
                failures.append((check.route, found))
    fail(failures)
