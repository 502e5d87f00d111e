"""Workspace routes answer the numbers an independent computation gives over the same events."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.e2e import dataset as d
from tests.e2e.dataset import WINDOW, Dataset, get

BASE = "/api/analytics/workspace"


# Parameter sets of the shared parameters, resolved against the dataset (ids are made per run).
Params = Callable[[Dataset], dict[str, Any]]
SHARED: dict[str, Params] = {
    "window": lambda ds: dict(WINDOW),
    "bots": lambda ds: {**WINDOW, "includeBots": "true"},
    "country-in": lambda ds: {**WINDOW, "country": "DE,FR"},
    "country-out": lambda ds: {**WINDOW, "country": "-DE"},
    "two-filters": lambda ds: {**WINDOW, "device": "mobile", "referrer": "-google.com,t.co"},
    "continent": lambda ds: {**WINDOW, "continent": "NA,AS", "trigger": "link"},
    "browser-os": lambda ds: {**WINDOW, "browser": "Safari", "os": "-iOS"},
    "usd": lambda ds: {**WINDOW, "currency": "USD"},
    "jpy": lambda ds: {**WINDOW, "currency": "jpy"},
    "gbp-bots": lambda ds: {**WINDOW, "currency": "GBP", "includeBots": "true"},
    "campaign": lambda ds: {**WINDOW, "campaignId": ds.campaigns["Spring"]},
    "folder": lambda ds: {**WINDOW, "folderId": ds.folders["Blog"]},
    "tag": lambda ds: {**WINDOW, "tagId": ds.tags["sale"]},
    "campaign-and-tag": lambda ds: {
        **WINDOW,
        "campaignId": ds.campaigns["Spring"],
        "tagId": ds.tags["sale"],
    },
    "empty-campaign": lambda ds: {**WINDOW, "campaignId": ds.campaigns["Dormant"]},
    "new-york": lambda ds: {**WINDOW, "timezone": "America/New_York"},
    "one-day": lambda ds: {"start": "2026-03-29", "end": "2026-03-29"},
}


def expected_overview(e: d.Expect) -> dict[str, Any]:
    current, previous = e.totals(), e.totals(previous=True)
    return {
        "totals": current,
        "previous": previous,
        "rates": {
            "clickToLead": d.ratio(current["leads"], current["clicks"]),
            "leadToSale": d.ratio(current["sales"], current["leads"]),
            "clickToSale": d.ratio(current["sales"], current["clicks"]),
        },
    }


@pytest.mark.parametrize("case", SHARED)
async def test_overview(http, ds, rates, case):
    params = SHARED[case](ds)
    e = d.expect(ds, params, rates)
    data = await get(http, ds, f"{BASE}/overview", params)
    want = expected_overview(e)
    d.assert_totals(data["totals"], want["totals"])
    d.assert_totals(data["previous"], want["previous"])
    for name, value in want["rates"].items():
        assert abs(data["rates"][name] - value) < 1e-6, (name, data["rates"], want["rates"])
    meta = data["meta"]
    assert meta["currency"] == e.currency
    assert meta["timezone"] == e.tz.key
    assert meta["start"] == e.start.astimezone(e.tz).isoformat()
    assert meta["end"] == e.end.astimezone(e.tz).isoformat()
    assert meta["previousStart"] == e.previous_start.astimezone(e.tz).isoformat()
    assert meta["previousEnd"] == meta["start"]


async def test_overview_window_is_whole_local_days_across_dst(http, ds, rates):
    data = await get(http, ds, f"{BASE}/overview", WINDOW)
    assert data["meta"]["start"] == "2026-03-24T00:00:00+01:00"
    assert data["meta"]["end"] == "2026-04-03T00:00:00+02:00"
    assert data["meta"]["previousStart"] == "2026-03-14T00:00:00+01:00"
    # The edge clicks at 22:59:59Z (previous day) and 22:00:00Z (after the window) stay out.
    inside = [c for c in ds.clicks if not c["is_bot"]]
    start, end = datetime(2026, 3, 23, 23, tzinfo=UTC), datetime(2026, 4, 2, 22, tzinfo=UTC)
    assert data["totals"]["clicks"] == sum(1 for c in inside if start <= c["timestamp"] < end)


async def test_unsupported_currency_falls_back_with_a_notice(http, ds, rates):
    params = {**WINDOW, "currency": "ZZZ"}
    data = await get(http, ds, f"{BASE}/overview", params)
    assert data["meta"]["currency"] == "EUR"  # the workspace's default
    assert any("ZZZ" in notice for notice in data["meta"]["notices"]), data["meta"]
    want = d.expect(ds, params, rates).totals()
    d.assert_totals(data["totals"], want)


async def test_scope_of_another_workspace_is_404(http, ds, pg):
    other = await d.make_workspace(pg)
    for name in ("campaignId", "folderId", "tagId"):
        body = await get(http, ds, f"{BASE}/overview", {**WINDOW, name: 10**12}, status=404)
        assert body["error"]["code"] == "not_found"
    body = await get(http, ds, f"{BASE}/overview", {**WINDOW, "linkId": other.link_ids[0]}, 404)
    assert body["error"]["code"] == "not_found"


TIMESERIES = {
    # (params, granularity): hours across the 23-hour day, days, months, other zones.
    "hour-dst": ({"start": "2026-03-28", "end": "2026-03-29", "granularity": "hour"}, "hour"),
    "day-window": ({**WINDOW, "granularity": "day"}, "day"),
    "day-default": (dict(WINDOW), "day"),
    "month": ({"start": "2026-03-01", "end": "2026-04-30", "granularity": "month"}, "month"),
    "day-new-york": ({**WINDOW, "timezone": "America/New_York"}, "day"),
    "hour-kolkata": (
        {"start": "2026-03-29", "end": "2026-03-29", "timezone": "Asia/Kolkata"},
        "hour",
    ),
    "day-filtered": ({**WINDOW, "country": "-US", "currency": "USD"}, "day"),
    "hour-bots": (
        {"start": "2026-03-29", "end": "2026-03-30", "includeBots": "true", "granularity": "hour"},
        "hour",
    ),
}


@pytest.mark.parametrize("case", TIMESERIES)
async def test_timeseries(http, ds, rates, case):
    params, granularity = TIMESERIES[case]
    e = d.expect(ds, params, rates)
    data = await get(http, ds, f"{BASE}/timeseries", params)
    assert data["meta"]["granularity"] == granularity
    found = e.all()
    want = d.timeseries(
        found["clicks"], found["leads"], found["sales"],
        e.start, e.end, granularity, e.tz, e.currency, rates,
    )  # fmt: skip
    assert [p["time"] for p in data["points"]] == [p["time"] for p in want]
    for got, expected in zip(data["points"], want, strict=True):
        d.assert_totals(got, expected)
    assert sum(p["clicks"] for p in data["points"]) == len(found["clicks"])


async def test_timeseries_labels_follow_the_offset(http, ds):
    data = await get(
        http, ds, f"{BASE}/timeseries", {"start": "2026-03-28", "end": "2026-03-29"}
    )  # two days: hourly by default
    times = [p["time"] for p in data["points"]]
    assert len(times) == 47
    assert times[0] == "2026-03-28T00:00:00+01:00"
    assert "2026-03-29T01:00:00+01:00" in times and "2026-03-29T03:00:00+02:00" in times
    assert not any(t.startswith("2026-03-29T02:") for t in times)
    data = await get(http, ds, f"{BASE}/timeseries", WINDOW)
    days = [p["time"] for p in data["points"]]
    assert days[4:7] == [
        "2026-03-28T00:00:00+01:00",
        "2026-03-29T00:00:00+01:00",
        "2026-03-30T00:00:00+02:00",
    ]


def plain(dimension: str) -> Callable[[d.Event], list[Any]]:
    return lambda e: [e[dimension]]


BREAKDOWNS = {
    # case: (route, extra params, dimension)
    "regions": ("regions", {}, "region"),
    "regions-limit-3": ("regions", {"limit": 3}, "region"),
    "regions-limit-1000": ("regions", {"limit": 1000}, "region"),
    "regions-filtered": ("regions", {"country": "DE,FR", "includeBots": "true"}, "region"),
    "continents": ("continents", {}, "continent"),
    "continents-usd": ("continents", {"currency": "USD", "country": "-DE"}, "continent"),
    "devices": ("devices", {}, "device"),
    "devices-device": ("devices", {"by": "device"}, "device"),
    "devices-browser": ("devices", {"by": "browser"}, "browser"),
    "devices-os": ("devices", {"by": "OS", "limit": 2}, "os"),
    "devices-bots": ("devices", {"by": "browser", "includeBots": "true"}, "browser"),
    "triggers": ("triggers", {}, "trigger"),
    "triggers-campaign": ("triggers", {"campaignId": "Spring"}, "trigger"),
}


def resolve_names(ds: Dataset, params: dict[str, Any]) -> dict[str, Any]:
    """Replace campaign, folder and tag names by the dataset's ids."""
    out = dict(params)
    for name, table in (("campaignId", ds.campaigns), ("folderId", ds.folders), ("tagId", ds.tags)):
        if name in out:
            out[name] = table[out[name]]
    return out


@pytest.mark.parametrize("case", BREAKDOWNS)
async def test_breakdowns(http, ds, rates, case):
    route, extra, dimension = BREAKDOWNS[case]
    params = {**WINDOW, **resolve_names(ds, extra)}
    e = d.expect(ds, params, rates)
    data = await get(http, ds, f"{BASE}/{route}", params)
    assert data["dimension"] == dimension
    want = d.breakdown(
        e.all(),
        plain(dimension),
        limit=int(params.get("limit", 10)),
        label=d.dimension_label(dimension),
        target=e.currency,
        rates=rates,
    )
    d.assert_rows(data["rows"], want)
    assert data["meta"]["currency"] == e.currency


async def test_continent_labels(http, ds):
    data = await get(http, ds, f"{BASE}/continents", WINDOW)
    labels = {r["key"]: r["label"] for r in data["rows"]}
    assert labels["EU"] == "Europe" and labels["NA"] == "North America"
    assert labels[""] == "(unknown)"


async def test_regions_default_limit_is_ten(http, ds, rates):
    data = await get(http, ds, f"{BASE}/regions", WINDOW)
    regions = {c["region"] for c in d.expect(ds, WINDOW, rates).pick("clicks")}
    assert len(regions) > 10
    assert len(data["rows"]) == 10


@pytest.mark.parametrize(
    ("route", "params", "field"),
    [
        ("devices", {"by": "country"}, "by"),
        ("campaigns/ranking", {"sort": "name"}, "sort"),
        ("top-folders", {"sort": "name"}, "sort"),
        ("top-tags", {"sort": "clicks,leads"}, "sort"),
        ("regions", {"limit": 0}, "limit"),
        ("regions", {"limit": 1001}, "limit"),
        ("overview", {"country": "-"}, "country"),
    ],
)
async def test_bad_parameters_are_400(http, ds, route, params, field):
    body = await get(http, ds, f"{BASE}/{route}", {**WINDOW, **params}, status=400)
    assert body["error"]["code"] == "invalid_argument"
    assert body["error"].get("field") in (field, None), body


def groups_of(ds: Dataset, group: str) -> Callable[[d.Event], list[int]]:
    by_link = {
        lk["id"]: (
            lk["tag_ids"]
            if group == "tag"
            else [lk[f"{group}_id"]]
            if lk[f"{group}_id"] is not None
            else []
        )
        for lk in ds.links
    }
    return lambda e: by_link[e["link_id"]]


def group_names(ds: Dataset, group: str) -> dict[int, str]:
    table = {"folder": ds.folders, "tag": ds.tags, "campaign": ds.campaigns}[group]
    return {gid: name for name, gid in table.items()}


GROUPS = {
    # case: (route, group, extra params)
    "top-folders": ("top-folders", "folder", {}),
    "top-folders-usd": ("top-folders", "folder", {"currency": "USD", "country": "-US"}),
    "top-tags": ("top-tags", "tag", {}),
    "top-tags-limit-1": ("top-tags", "tag", {"limit": 1}),
    "top-tags-bots": ("top-tags", "tag", {"includeBots": "true"}),
    "ranking": ("campaigns/ranking", "campaign", {}),
    "ranking-clicks": ("campaigns/ranking", "campaign", {"sort": "clicks"}),
    "ranking-leads": ("campaigns/ranking", "campaign", {"sort": "leads"}),
    "ranking-sales": ("campaigns/ranking", "campaign", {"sort": "sales"}),
    "ranking-revenue": ("campaigns/ranking", "campaign", {"sort": "revenue"}),
    "ranking-revenue-jpy": (
        "campaigns/ranking",
        "campaign",
        {"sort": "revenue", "currency": "JPY"},
    ),
    "ranking-filtered": ("campaigns/ranking", "campaign", {"sort": "leads", "device": "desktop"}),
    "ranking-in-folder": ("campaigns/ranking", "campaign", {"folderId": "Blog"}),
    "top-folders-in-tag": ("top-folders", "folder", {"tagId": "vip"}),
    "top-tags-in-campaign": ("top-tags", "tag", {"campaignId": "Spring"}),
    # Every ranking route ranks (and shares) by `sort`.
    "top-folders-visitors": ("top-folders", "folder", {"sort": "visitors"}),
    "top-folders-leads": ("top-folders", "folder", {"sort": "leads"}),
    "top-folders-revenue": ("top-folders", "folder", {"sort": "revenue", "currency": "USD"}),
    "top-tags-leads": ("top-tags", "tag", {"sort": "leads"}),
    "top-tags-sales": ("top-tags", "tag", {"sort": "sales", "includeBots": "true"}),
    "top-tags-revenue": ("top-tags", "tag", {"sort": "revenue"}),
    "top-tags-revenue-limit-1": ("top-tags", "tag", {"sort": "revenue", "limit": 1}),
}


@pytest.mark.parametrize("case", GROUPS)
async def test_group_breakdowns(http, ds, rates, case):
    route, group, extra = GROUPS[case]
    params = {**WINDOW, **resolve_names(ds, extra)}
    e = d.expect(ds, params, rates)
    data = await get(http, ds, f"{BASE}/{route}", params)
    assert data["dimension"] == group
    names = group_names(ds, group)
    want = d.breakdown(
        e.all(),
        groups_of(ds, group),
        rank=extra.get("sort", "clicks"),
        limit=int(params.get("limit", 10)),
        label=lambda gid: names[gid],
        target=e.currency,
        rates=rates,
    )
    assert want, "the dataset should give rows"
    d.assert_rows(data["rows"], want)


@pytest.mark.parametrize(("route", "group"), [("top-folders", "folder"), ("top-tags", "tag")])
async def test_sort_changes_the_ranking_and_the_share(http, ds, rates, route, group):
    by_clicks = await get(http, ds, f"{BASE}/{route}", WINDOW)
    e = d.expect(ds, WINDOW, rates)
    names = group_names(ds, group)
    for rank in ("leads", "revenue"):
        data = await get(http, ds, f"{BASE}/{route}", {**WINDOW, "sort": rank})
        want = d.breakdown(
            e.all(),
            groups_of(ds, group),
            rank=rank,
            label=lambda gid: names[gid],
            target=e.currency,
            rates=rates,
        )
        d.assert_rows(data["rows"], want)
        shares = {r["key"]: r["share"] for r in data["rows"]}
        assert shares != {r["key"]: r["share"] for r in by_clicks["rows"]}, rank


async def test_a_link_with_two_tags_counts_for_both(http, ds, rates):
    data = await get(http, ds, f"{BASE}/top-tags", WINDOW)
    rows = {r["label"]: r for r in data["rows"]}
    link_a = ds.link("spring-a")
    clicks = d.expect(ds, WINDOW, rates).pick("clicks")
    on_a = sum(1 for c in clicks if c["link_id"] == link_a["id"])
    plain_link = ds.link("plain")
    on_plain = sum(1 for c in clicks if c["link_id"] == plain_link["id"])
    assert rows["sale"]["clicks"] == on_a + on_plain
    assert rows["vip"]["clicks"] >= on_a
    assert "idle" not in rows  # a tag without links has no row
    # Shares are of the window's total, so tags sharing a link add up to more than 1.
    assert sum(r["share"] for r in data["rows"]) > 1


async def test_ranking_leaves_out_campaigns_without_links(http, ds):
    data = await get(http, ds, f"{BASE}/campaigns/ranking", WINDOW)
    assert {r["label"] for r in data["rows"]} == {"Spring", "Autumn"}


def budget_clicks(ds: Dataset, budget: dict[str, Any], until: datetime) -> int:
    start, end = d.local_range(budget["period_start"], budget["period_end"], ds.tz)
    campaign_links = {lk["id"] for lk in ds.links if lk["campaign_id"] == budget["campaign_id"]}
    return len(d.select(ds.clicks, start, min(until, end), link_ids=campaign_links))


def expected_budget(
    ds: Dataset, budget: dict[str, Any], currency: str, rates: Any, now: datetime
) -> dict[str, Any]:
    start, end = d.local_range(budget["period_start"], budget["period_end"], ds.tz)
    until = min(max(now, start), end)
    clicks = budget_clicks(ds, budget, until)
    amount = d.convert(budget["amount_minor"], budget["currency"], currency, rates)
    spend = d.convert(clicks * budget["cost_per_click_minor"], budget["currency"], currency, rates)
    expected_spend = amount * (until - start) / (end - start)
    return {
        "campaignId": budget["campaign_id"],
        "name": budget["campaign"],
        "budget": amount,
        "spend": spend,
        "remaining": amount - spend,
        "pacing": spend / expected_spend if expected_spend else None,
        "periodStart": budget["period_start"].isoformat(),
        "periodEnd": budget["period_end"].isoformat(),
        "clicks": clicks,
    }


def assert_budget(got: dict[str, Any], want: dict[str, Any], pacing_tolerance: float) -> None:
    for name in ("campaignId", "name", "periodStart", "periodEnd"):
        assert got[name] == want[name], (name, got, want)
    for name in ("budget", "spend", "remaining"):
        assert d.close(got[name], want[name], d.MONEY_TOLERANCE), (name, got, want)
    if want["pacing"] is None:
        assert got["pacing"] is None, (got, want)
    else:
        assert d.close(got["pacing"], want["pacing"], pacing_tolerance), (got, want)


async def test_budgets_of_past_periods(http, ds, rates):
    for currency in ("", "USD", "JPY"):
        params = {**WINDOW, **({"currency": currency} if currency else {})}
        data = await get(http, ds, f"{BASE}/budgets", params)
        target = currency or "EUR"
        assert data["meta"]["currency"] == target
        # Overlapping the window: Autumn 03-20..04-10 and Spring 03-24..03-31 (by name).
        overlapping = [ds.budgets[1], ds.budgets[0]]
        now = datetime.now(UTC)
        want = [expected_budget(ds, b, target, rates, now) for b in overlapping]
        assert [r["campaignId"] for r in data["rows"]] == [w["campaignId"] for w in want]
        for got, expected in zip(data["rows"], want, strict=True):
            assert expected["clicks"] > 0
            # Fully elapsed: spend over budget is the pacing (cents rounding: 1e-4).
            assert_budget(got, expected, 1e-4)


async def test_budgets_campaign_filter_and_window(http, ds, rates):
    params = {**WINDOW, "campaignId": ds.campaigns["Spring"]}
    data = await get(http, ds, f"{BASE}/budgets", params)
    assert [r["periodStart"] for r in data["rows"]] == ["2026-03-24"]
    # A window overlapping none of the budgets.
    data = await get(http, ds, f"{BASE}/budgets", {"start": "2025-06-01", "end": "2025-06-30"})
    assert data["rows"] == []


async def test_budget_running_now_paces_against_elapsed_time(http, ds, rates):
    before = datetime.now(UTC)
    data = await get(http, ds, f"{BASE}/budgets", {"days": 7, "currency": "USD"})
    after = datetime.now(UTC)
    running = ds.budgets[2]
    rows = [r for r in data["rows"] if r["periodStart"] == running["period_start"].isoformat()]
    assert len(rows) == 1, data["rows"]
    want = expected_budget(ds, running, "USD", rates, after)
    assert want["clicks"] >= 3  # the clicks dated now on the Spring links (one is a bot)
    assert want["clicks"] == budget_clicks(ds, running, before)
    # Pacing moves with the server's clock: bound it by the two readings.
    early = expected_budget(ds, running, "USD", rates, before)
    assert_budget(rows[0], want, abs(early["pacing"] - want["pacing"]) + 1e-4)
    assert rows[0]["spend"] == pytest.approx(want["clicks"] * 1.0, abs=0.01)  # 1 USD per click


async def test_usage_counts_this_months_events_with_bots(http, ds, pg):
    before = datetime.now(UTC)
    data = await get(http, ds, f"{BASE}/usage", {})
    tz = ZoneInfo(ds.ws.timezone)
    local = before.astimezone(tz)
    first = date(local.year, local.month, 1)
    following = date(local.year + local.month // 12, local.month % 12 + 1, 1)
    start, end = d.local_range(first, following - timedelta(days=1), tz)
    quota = await pg.fetchval("SELECT monthly_events FROM plans WHERE code = 'business'")
    used = {
        kind: len(d.select(ds.events(kind), start, end, bots=True))
        for kind in ("clicks", "leads", "sales")
    }
    used["total"] = sum(used.values())
    assert used["clicks"] >= 7 and used["leads"] >= 1 and used["sales"] >= 1
    assert any(c["is_bot"] and start <= c["timestamp"] for c in ds.clicks)
    assert data["plan"] == "business"
    assert data["periodStart"] == start.astimezone(tz).isoformat()
    assert data["periodEnd"] == end.astimezone(tz).isoformat()
    items = {i["kind"]: i for i in data["items"]}
    assert set(items) == set(used)
    for kind, n in used.items():
        assert items[kind]["used"] == n, (kind, items[kind], n)
        assert items[kind]["quota"] == quota
        assert items[kind]["percent"] == pytest.approx(round(100 * n / quota, 2))
