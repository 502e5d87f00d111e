"""Unified overview and conversion routes against an independent computation over the events."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e import dataset as d
from tests.e2e.dataset import WINDOW, Dataset, get

API = "/api/analytics"


def scoped(ds: Dataset, case: dict[str, Any]) -> dict[str, Any]:
    """Replace symbolic scope values (names, slugs) by the dataset's ids."""
    out = dict(case)
    if "campaignId" in out:
        out["campaignId"] = ds.campaigns[out["campaignId"]]
    if "linkId" in out:
        out["linkId"] = ds.link(out["linkId"])["id"]
    if "tagId" in out:
        out["tagId"] = ds.tags[out["tagId"]]
    return out


CASES = {
    "window": {},
    "bots": {"includeBots": "true"},
    "usd": {"currency": "USD"},
    "jpy-filtered": {"currency": "JPY", "country": "DE,US,JP"},
    "excluded": {"device": "-desktop", "referrer": "-t.co"},
    "campaign": {"campaignId": "Spring"},
    "link": {"linkId": "autumn"},
    "tag-gbp": {"tagId": "sale", "currency": "GBP"},
    "new-york": {"timezone": "America/New_York"},
}


@pytest.mark.parametrize("case", CASES)
async def test_overview(http, ds, rates, case):
    params = {**WINDOW, **scoped(ds, CASES[case])}
    e = d.expect(ds, params, rates)
    data = await get(http, ds, f"{API}/overview", params)
    current, previous = e.totals(), e.totals(previous=True)
    d.assert_totals(data["totals"], current)
    d.assert_totals(data["previous"], previous)
    assert data["rates"]["clickToLead"] == pytest.approx(
        d.ratio(current["leads"], current["clicks"]), abs=1e-6
    )
    assert data["rates"]["leadToSale"] == pytest.approx(
        d.ratio(current["sales"], current["leads"]), abs=1e-6
    )
    assert data["rates"]["clickToSale"] == pytest.approx(
        d.ratio(current["sales"], current["clicks"]), abs=1e-6
    )
    assert data["meta"]["currency"] == e.currency


def expected_details(e: d.Expect) -> list[dict[str, Any]]:
    events = [(x, "lead") for x in e.pick("leads")] + [(x, "sale") for x in e.pick("sales")]
    events.sort(key=lambda item: (item[0]["timestamp"], item[0]["event_id"]), reverse=True)
    out = []
    for x, kind in events:
        minor = e.rates[x["currency"]][0] if kind == "sale" else 0
        out.append(
            {
                "eventId": x["event_id"],
                "kind": kind,
                "timestamp": x["timestamp"].astimezone(e.tz).isoformat(),
                # Absent and unknown values are null.
                "customerId": x["customer_id"] or None,
                "eventName": x["event_name"] or None,
                "amount": x["amount"] / 10**minor if kind == "sale" else None,
                "currency": x["currency"] or None if kind == "sale" else None,
                "clickId": x["click_id"] or None,
                "linkId": x["link_id"] or None,
                "country": x["country"] or None,
                "device": x["device"] or None,
                "referrer": x["referrer"] or None,
            }
        )
    return out


async def pages(http, ds: Dataset, params: dict[str, Any]) -> list[list[dict[str, Any]]]:
    """Every page of conversions/details, following nextCursor."""
    found: list[list[dict[str, Any]]] = []
    cursor = ""
    for _ in range(200):
        data = await get(http, ds, f"{API}/conversions/details", {**params, "cursor": cursor})
        found.append(data["events"])
        cursor = data["nextCursor"]
        if not cursor:
            return found
    raise AssertionError("conversions/details never ended")


@pytest.mark.parametrize(
    ("case", "limit"),
    [
        ({}, 7),
        ({}, 1),
        ({}, 1000),
        ({"includeBots": "true"}, 9),
        ({"country": "-DE", "linkId": "spring-a"}, 4),
        ({"timezone": "Asia/Tokyo"}, 13),
    ],
)
async def test_conversion_details_pages(http, ds, rates, case, limit):
    params = {**WINDOW, **scoped(ds, case), "limit": limit}
    e = d.expect(ds, params, rates)
    want = expected_details(e)
    assert want
    got = await pages(http, ds, params)
    assert all(len(page) == limit for page in got[:-1])
    assert 0 < len(got[-1]) <= limit or (len(got) == 1 and not want)
    flat = [event for page in got for event in page]
    assert [x["eventId"] for x in flat] == [x["eventId"] for x in want]  # no gap, no overlap
    for g, w in zip(flat, want, strict=True):
        assert g == pytest.approx(w), (g, w)


async def test_conversion_details_default_limit_and_ties(http, ds, rates):
    data = await get(http, ds, f"{API}/conversions/details", WINDOW)
    want = expected_details(d.expect(ds, WINDOW, rates))
    assert len(data["events"]) == 10 and data["nextCursor"]
    assert [x["eventId"] for x in data["events"]] == [x["eventId"] for x in want[:10]]
    # A lead and a sale share a second: both are listed, the larger id first.
    everything = d.expect(ds, {**WINDOW, "includeBots": "true"}, rates)
    seconds = [x["timestamp"] for x in everything.pick("leads")]
    assert any(s["timestamp"] in seconds for s in everything.pick("sales"))


@pytest.mark.parametrize("cursor", ["abc", "Zm9vYmFy", "x" * 40])
async def test_conversion_details_bad_cursor_is_400(http, ds, cursor):
    body = await get(http, ds, f"{API}/conversions/details", {**WINDOW, "cursor": cursor}, 400)
    assert body["error"]["code"] == "invalid_argument"
    assert body["error"].get("field") == "cursor"


LEADS_FIELDS = ("clicks", "uniqueVisitors", "leads")
SALES_FIELDS = ("clicks", "uniqueVisitors", "sales", "revenue")


@pytest.mark.parametrize("case", ["window", "bots", "campaign", "usd", "link"])
async def test_leads_and_sales_totals(http, ds, rates, case):
    params = {**WINDOW, **scoped(ds, CASES[case])}
    e = d.expect(ds, params, rates)
    current, previous = e.totals(), e.totals(previous=True)
    leads = await get(http, ds, f"{API}/leads", params)
    d.assert_totals(leads["totals"], current, LEADS_FIELDS)
    d.assert_totals(leads["previous"], previous, LEADS_FIELDS)
    assert leads["rates"]["clickToLead"] == pytest.approx(
        d.ratio(current["leads"], current["clicks"]), abs=1e-6
    )
    sales = await get(http, ds, f"{API}/sales", params)
    d.assert_totals(sales["totals"], current, SALES_FIELDS)
    d.assert_totals(sales["previous"], previous, SALES_FIELDS)
    assert sales["rates"]["clickToSale"] == pytest.approx(
        d.ratio(current["sales"], current["clicks"]), abs=1e-6
    )
    assert sales["meta"]["currency"] == e.currency


@pytest.mark.parametrize(
    ("route", "fields"),
    [("leads/timeseries", LEADS_FIELDS), ("sales/timeseries", SALES_FIELDS), ("composite", ())],
)
@pytest.mark.parametrize(
    ("extra", "granularity"),
    [
        ({}, "day"),
        ({"start": "2026-03-29", "end": "2026-03-30", "currency": "USD"}, "hour"),
        ({"granularity": "month", "timezone": "Asia/Tokyo"}, "month"),
        ({"country": "-US", "includeBots": "true", "granularity": "day"}, "day"),
    ],
)
async def test_timeseries(http, ds, rates, route, fields, extra, granularity):
    params = {**WINDOW, **extra}
    e = d.expect(ds, params, rates)
    data = await get(http, ds, f"{API}/{route}", params)
    found = e.all()
    want = d.timeseries(
        found["clicks"], found["leads"], found["sales"],
        e.start, e.end, granularity, e.tz, e.currency, rates,
    )  # fmt: skip
    assert [p["time"] for p in data["points"]] == [p["time"] for p in want]
    for got, expected in zip(data["points"], want, strict=True):
        d.assert_totals(got, expected, fields)
    if route == "composite":
        assert data["rows"] == [] and data["dimension"] is None


def label_for(dimension: str):  # noqa: ANN201
    return d.dimension_label(dimension) if dimension != "link" else str


BREAKDOWN_CASES = [
    ({}, "country"),
    ({"dimension": "device"}, "device"),
    ({"dimension": "link"}, "link"),
    ({"dimension": "city", "limit": 3}, "city"),
    ({"dimension": "continent", "currency": "JPY"}, "continent"),
    ({"dimension": "referrer", "includeBots": "true"}, "referrer"),
    ({"dimension": "trigger", "country": "-DE"}, "trigger"),
    ({"dimension": "region", "campaignId": "Spring", "limit": 1000}, "region"),
]
COLUMN = {"link": "link_id"}


@pytest.mark.parametrize(
    ("route", "rank", "fields"),
    [
        ("leads/breakdown", "leads", ("label", "clicks", "uniqueVisitors", "leads", "share")),
        (
            "sales/breakdown",
            "revenue",
            ("label", "clicks", "uniqueVisitors", "sales", "revenue", "share"),
        ),
        ("composite", "clicks", ()),
    ],
)
@pytest.mark.parametrize(("extra", "dimension"), BREAKDOWN_CASES)
async def test_breakdowns(http, ds, rates, route, rank, fields, extra, dimension):
    params = {**WINDOW, **scoped(ds, extra)}
    if route == "composite" and "dimension" not in params:
        params["dimension"] = dimension  # composite without one is the timeseries
    e = d.expect(ds, params, rates)
    data = await get(http, ds, f"{API}/{route}", params)
    assert data["dimension"] == dimension
    column = COLUMN.get(dimension, dimension)
    want = d.breakdown(
        e.all(),
        lambda ev: [ev[column]],
        rank=rank,
        limit=int(params.get("limit", 10)),
        label=label_for(dimension),
        target=e.currency,
        rates=rates,
    )
    assert want
    d.assert_rows(data["rows"], want, fields)
    if route == "composite":
        assert data["points"] == []


async def test_sales_breakdown_is_ranked_by_revenue_not_count(http, ds, rates):
    e = d.expect(ds, WINDOW, rates)
    differs = []
    for dimension in ("country", "city", "device", "referrer"):
        by_revenue, by_count = (
            d.breakdown(e.all(), d.key_of(dimension), rank=rank, target="EUR", rates=rates)
            for rank in ("revenue", "sales")
        )
        if [r["key"] for r in by_revenue] != [r["key"] for r in by_count]:
            differs.append(dimension)
            data = await get(http, ds, f"{API}/sales/breakdown", {**WINDOW, "dimension": dimension})
            assert [r["key"] for r in data["rows"]] == [r["key"] for r in by_revenue]
    assert differs, "the dataset should rank differently by revenue and by count"


@pytest.mark.parametrize("route", ["leads/breakdown", "sales/breakdown", "composite"])
@pytest.mark.parametrize("dimension", ["rule", "visitor", "destination"])
async def test_bad_dimension_is_400(http, ds, route, dimension):
    body = await get(http, ds, f"{API}/{route}", {**WINDOW, "dimension": dimension}, 400)
    assert body["error"]["code"] == "invalid_argument"
    assert body["error"].get("field") == "dimension"


@pytest.mark.parametrize("case", ["window", "bots", "jpy-filtered", "link", "new-york"])
async def test_funnel(http, ds, rates, case):
    # The funnel counts: it has no money, so it honours no currency.
    case_params = {k: v for k, v in CASES[case].items() if k != "currency"}
    params = {**WINDOW, **scoped(ds, case_params)}
    current = d.expect(ds, params, rates).totals()
    data = await get(http, ds, f"{API}/funnel", params)
    clicks, leads, sales = current["clicks"], current["leads"], current["sales"]
    want = [
        ("click", clicks, 1.0, 1.0),
        ("lead", leads, d.ratio(leads, clicks), d.ratio(leads, clicks)),
        ("sale", sales, d.ratio(sales, leads), d.ratio(sales, clicks)),
    ]
    got = [
        (s["name"], s["count"], s["rateFromPrevious"], s["rateFromStart"]) for s in data["steps"]
    ]
    assert [g[:2] for g in got] == [w[:2] for w in want]
    for g, w in zip(got, want, strict=True):
        assert g[2] == pytest.approx(w[2], abs=1e-6) and g[3] == pytest.approx(w[3], abs=1e-6)
