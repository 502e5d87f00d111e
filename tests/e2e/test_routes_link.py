"""Link routes answer the numbers an independent computation gives over the same events."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.e2e import dataset as d
from tests.e2e.dataset import WINDOW, Dataset, get

MAX_PATH_LENGTH = 10


def link_path(link: dict[str, Any], route: str) -> str:
    return f"/api/analytics/{link['id']}/{route}"


SUMMARY_CASES = {
    "window": {},
    "bots": {"includeBots": "true"},
    "usd-filtered": {"currency": "USD", "country": "-DE", "device": "mobile,desktop"},
    "new-york": {"timezone": "America/New_York"},
}


@pytest.mark.parametrize("case", SUMMARY_CASES)
@pytest.mark.parametrize("slug", ["spring-a", "autumn"])
async def test_summary(http, ds, rates, case, slug):
    link = ds.link(slug)
    params = {**WINDOW, **SUMMARY_CASES[case]}
    e = d.expect(ds, {**params, "linkId": link["id"]}, rates)
    data = await get(http, ds, link_path(link, "summary"), params)
    current, previous = e.totals(), e.totals(previous=True)
    assert current["clicks"] > 0
    d.assert_totals(data["totals"], current)
    d.assert_totals(data["previous"], previous)
    assert data["rates"]["clickToLead"] == pytest.approx(
        d.ratio(current["leads"], current["clicks"]), abs=1e-6
    )
    assert data["rates"]["leadToSale"] == pytest.approx(
        d.ratio(current["sales"], current["leads"]), abs=1e-6
    )
    assert data["meta"]["currency"] == e.currency


@pytest.mark.parametrize(
    ("extra", "granularity"),
    [
        ({"granularity": "day"}, "day"),
        ({"start": "2026-03-29", "end": "2026-03-29"}, "hour"),
        ({"timezone": "America/New_York", "currency": "GBP", "granularity": "day"}, "day"),
        ({"start": "2026-03-01", "end": "2026-04-30", "granularity": "month"}, "month"),
    ],
)
async def test_timeseries(http, ds, rates, extra, granularity):
    link = ds.link("spring-a")
    params = {**WINDOW, **extra}
    e = d.expect(ds, {**params, "linkId": link["id"]}, rates)
    data = await get(http, ds, link_path(link, "timeseries"), params)
    found = e.all()
    want = d.timeseries(
        found["clicks"], found["leads"], found["sales"],
        e.start, e.end, granularity, e.tz, e.currency, rates,
    )  # fmt: skip
    assert [p["time"] for p in data["points"]] == [p["time"] for p in want]
    for got, expected in zip(data["points"], want, strict=True):
        d.assert_totals(got, expected)


BREAKDOWNS = {
    # case: (route, extra params, dimension)
    "geo": ("geo", {}, "country"),
    "geo-limit-2": ("geo", {"limit": 2}, "country"),
    "geo-usd-bots": ("geo", {"currency": "USD", "includeBots": "true"}, "country"),
    "cities": ("cities", {}, "city"),
    "cities-in-de": ("cities", {"country": "DE"}, "city"),
    "regions": ("regions", {"limit": 1000}, "region"),
    "continents": ("continents", {}, "continent"),
    "devices": ("devices", {}, "device"),
    "devices-browser": ("devices", {"by": "browser"}, "browser"),
    "devices-os": ("devices", {"by": "os", "country": "-US"}, "os"),
    "referrers": ("referrers", {}, "referrer"),
    "referrers-jpy": ("referrers", {"currency": "JPY", "trigger": "-api"}, "referrer"),
    "triggers": ("triggers", {}, "trigger"),
}


@pytest.mark.parametrize("slug", ["spring-a", "spring-b"])
@pytest.mark.parametrize("case", BREAKDOWNS)
async def test_breakdowns(http, ds, rates, case, slug):
    route, extra, dimension = BREAKDOWNS[case]
    link = ds.link(slug)
    params = {**WINDOW, **extra}
    e = d.expect(ds, {**params, "linkId": link["id"]}, rates)
    data = await get(http, ds, link_path(link, route), params)
    assert data["dimension"] == dimension
    want = d.breakdown(
        e.all(),
        lambda ev: [ev[dimension]],
        limit=int(params.get("limit", 10)),
        label=d.dimension_label(dimension),
        target=e.currency,
        rates=rates,
    )
    assert want
    d.assert_rows(data["rows"], want)


async def test_cities_are_more_than_the_default_limit(http, ds, rates):
    link = ds.link("spring-a")
    e = d.expect(ds, {**WINDOW, "linkId": link["id"]}, rates)
    assert len({c["city"] for c in e.pick("clicks")}) > 10
    data = await get(http, ds, link_path(link, "cities"), WINDOW)
    assert len(data["rows"]) == 10


def rule_names(ds: Dataset) -> dict[int, str]:
    return {0: "(default)", **{r["id"]: r["name"] for r in ds.rules}}


@pytest.mark.parametrize(
    ("slug", "extra"),
    [
        ("spring-a", {}),
        ("spring-a", {"includeBots": "true", "limit": 2}),
        ("spring-a", {"device": "-mobile"}),
        ("spring-b", {}),
        ("autumn", {}),
    ],
)
async def test_rules(http, ds, rates, slug, extra):
    link = ds.link(slug)
    params = {**WINDOW, **extra}
    e = d.expect(ds, {**params, "linkId": link["id"]}, rates)
    data = await get(http, ds, link_path(link, "rules"), params)
    assert data["dimension"] == "rule"
    names = rule_names(ds)
    want = d.breakdown(
        {"clicks": e.pick("clicks")},
        lambda c: [c["rule_id"]],
        limit=int(params.get("limit", 10)),
        label=lambda rule_id: names[rule_id],
        rates=rates,
    )
    d.assert_rows(data["rows"], want)
    if slug == "spring-a" and not extra:
        labels = {r["label"] for r in data["rows"]}
        assert {"(default)", "Germany or mobile", "From the news"} <= labels


@pytest.mark.parametrize("rule_index", [0, 1, 2])
@pytest.mark.parametrize("extra", [{}, {"includeBots": "true"}, {"country": "-DE"}])
async def test_rule_conditions(http, ds, rates, rule_index, extra):
    rule = ds.rules[rule_index]
    link = next(lk for lk in ds.links if lk["id"] == rule["link_id"])
    params = {**WINDOW, **extra}
    e = d.expect(ds, {**params, "linkId": link["id"]}, rates)
    data = await get(http, ds, link_path(link, f"rules/{rule['id']}/conditions"), params)
    assert data["dimension"] == "condition"
    labels = {c["id"]: f"{c['field']} {c['operator']} {c['value']}" for c in rule["conditions"]}
    matched = [c for c in e.pick("clicks") if c["rule_id"] == rule["id"]]
    want = d.breakdown(
        {"clicks": matched},
        lambda c: [c["condition_id"]],
        label=lambda cid: labels[cid],
        rates=rates,
    )
    if not extra:
        assert want, "the dataset should match every rule"
    # share is of the link's clicks that matched this rule.
    d.assert_rows(data["rows"], want)


async def test_rule_of_another_link_is_404(http, ds, pg):
    link_a, link_b = ds.link("spring-a"), ds.link("spring-b")
    rule_a = next(r for r in ds.rules if r["link_id"] == link_a["id"])
    rule_b = next(r for r in ds.rules if r["link_id"] == link_b["id"])
    for link, rule in ((link_b, rule_a), (link_a, rule_b)):
        body = await get(
            http, ds, link_path(link, f"rules/{rule['id']}/conditions"), WINDOW, status=404
        )
        assert body["error"]["code"] == "not_found"
    body = await get(http, ds, link_path(link_a, "rules/999999999/conditions"), WINDOW, 404)
    assert body["error"]["code"] == "not_found"
    # A rule of a link of another workspace, asked through that link: the link is not ours.
    other = await d.make_workspace(pg)
    from services.admin import links

    foreign = await links.create_rule(
        pg, other.workspace_id, other.link_ids[0], "x", "https://e.x", [("country", "eq", "DE")]
    )
    for link_id in (other.link_ids[0], link_a["id"]):
        r = await http.get(
            f"/api/analytics/{link_id}/rules/{foreign['id']}/conditions",
            params=WINDOW,
            headers=ds.headers,
        )
        assert r.status_code == 404, r.text


def expected_flow(link: dict[str, Any], clicks: list[d.Event]) -> tuple[Counter, Counter]:
    sources: Counter[str] = Counter()
    destinations: Counter[str] = Counter()
    for c in clicks:
        sources[c["referrer"] or "(direct)"] += 1
        destinations[c["destination_url"] or link["destination_url"]] += 1
    return sources, destinations


@pytest.mark.parametrize(
    "extra", [{}, {"country": "DE,US"}, {"includeBots": "true"}, {"limit": 1000}]
)
async def test_traffic_flow(http, ds, rates, extra):
    link = ds.link("spring-a")
    params = {**WINDOW, **extra}
    e = d.expect(ds, {**params, "linkId": link["id"]}, rates)
    data = await get(http, ds, link_path(link, "traffic-flow"), params)
    sources, destinations = expected_flow(link, e.pick("clicks"))
    assert len(sources) <= 10 and len(destinations) <= 10  # every value fits the default limit
    link_node = f"link:{link['id']}"
    nodes = {(n["id"], n["label"], n["kind"]) for n in data["nodes"]}
    want_nodes = {(link_node, f"{link['domain']}/{link['slug']}", "link")}
    want_nodes |= {(f"src:{s}", s, "source") for s in sources}
    want_nodes |= {(f"dst:{t}", t, "destination") for t in destinations}
    assert nodes == want_nodes
    assert len(data["nodes"]) == len(want_nodes)
    edges = {(x["source"], x["target"]): x["weight"] for x in data["edges"]}
    want_edges = {(f"src:{s}", link_node): n for s, n in sources.items()}
    want_edges |= {(link_node, f"dst:{t}"): n for t, n in destinations.items()}
    assert edges == want_edges
    assert len(data["edges"]) == len(want_edges)
    # Weights in and out of the link both add up to its clicks.
    assert sum(sources.values()) == sum(destinations.values()) == len(e.pick("clicks"))


async def test_traffic_flow_limit_keeps_the_heaviest_with_full_weights(http, ds, rates):
    link = ds.link("spring-a")
    e = d.expect(ds, {**WINDOW, "linkId": link["id"]}, rates)
    sources, destinations = expected_flow(link, e.pick("clicks"))
    data = await get(http, ds, link_path(link, "traffic-flow"), {**WINDOW, "limit": 2})
    link_node = f"link:{link['id']}"
    for prefix, counts, side in (("src:", sources, "source"), ("dst:", destinations, "target")):
        got = {x[side][len(prefix) :]: x["weight"] for x in data["edges"] if x[side] != link_node}
        assert len(got) == min(2, len(counts))
        for value, weight in got.items():
            assert weight == counts[value], (value, weight, counts)
        left_out = [n for v, n in counts.items() if v not in got]
        assert all(n <= min(got.values()) for n in left_out), (got, counts)


def expected_paths(
    ds: Dataset, e: d.Expect, link_id: int, minutes: int
) -> Counter[tuple[int, ...]]:
    """Sessions (gap > minutes splits) of visitors who clicked the link in the window: the
    ordered distinct-consecutive links of those containing the link and at least two links."""
    clicks = d.select(ds.clicks, e.start, e.end, bots=e.bots)
    through = {c["visitor_id"] for c in clicks if c["link_id"] == link_id}
    per_visitor: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for c in clicks:
        if c["visitor_id"] in through:
            per_visitor[c["visitor_id"]].append((int(c["timestamp"].timestamp()), c["link_id"]))
    counts: Counter[tuple[int, ...]] = Counter()
    for seq in per_visitor.values():
        seq.sort()
        sessions: list[list[int]] = []
        last = None
        for when, lk in seq:
            if last is None or when - last > minutes * 60:
                sessions.append([])
            if not sessions[-1] or sessions[-1][-1] != lk:
                sessions[-1].append(lk)
            last = when
        for session in sessions:
            if link_id in session and len(session) >= 2:
                counts[tuple(session[:MAX_PATH_LENGTH])] += 1
    return counts


@pytest.mark.parametrize("minutes", [None, 5, 120])
@pytest.mark.parametrize("slug", ["spring-a", "autumn"])
async def test_click_paths(http, ds, rates, minutes, slug):
    link = ds.link(slug)
    params = {**WINDOW, "limit": 1000}
    if minutes is not None:
        params["sessionMinutes"] = minutes
    e = d.expect(ds, params, rates)
    data = await get(http, ds, link_path(link, "click-paths"), params)
    assert data["sessionMinutes"] == (minutes or 30)
    want = expected_paths(ds, e, link["id"], minutes or 30)
    assert want, "the dataset should have paths through the link"
    got = {tuple(p["linkIds"]): p["count"] for p in data["paths"]}
    assert got == dict(want)
    assert len(data["paths"]) == len(want)
    counts = [p["count"] for p in data["paths"]]
    assert counts == sorted(counts, reverse=True)
    slugs = {lk["id"]: f"{lk['domain']}/{lk['slug']}" for lk in ds.links}
    for p in data["paths"]:
        assert p["labels"] == [slugs[i] for i in p["linkIds"]]
        assert all(a != b for a, b in zip(p["linkIds"], p["linkIds"][1:], strict=False))


async def test_click_paths_session_window_matters_and_limit(http, ds, rates):
    link = ds.link("spring-a")
    e = d.expect(ds, WINDOW, rates)
    short, long = (expected_paths(ds, e, link["id"], m) for m in (5, 120))
    assert short != long  # the dataset distinguishes session lengths
    data = await get(http, ds, link_path(link, "click-paths"), WINDOW)  # default limit 10
    want = expected_paths(ds, e, link["id"], 30)
    assert len(want) > 10
    got = [(tuple(p["linkIds"]), p["count"]) for p in data["paths"]]
    assert len(got) == 10
    for path, count in got:
        assert want[path] == count
    floor = min(count for _, count in got)
    assert all(n <= floor for path, n in want.items() if path not in dict(got))


@pytest.mark.parametrize("minutes", [0, 1441])
async def test_click_paths_bad_session_minutes(http, ds, minutes):
    link = ds.link("spring-a")
    body = await get(
        http, ds, link_path(link, "click-paths"), {**WINDOW, "sessionMinutes": minutes}, 400
    )
    assert body["error"]["code"] == "invalid_argument"


LINK_ROUTES = (
    "summary", "timeseries", "geo", "cities", "regions", "continents", "devices", "referrers",
    "triggers", "rules", "traffic-flow", "click-paths",
)  # fmt: skip


async def test_link_of_another_workspace_is_404_on_every_route(http, ds, pg):
    other = await d.make_workspace(pg)
    foreign = {"id": other.link_ids[0]}
    for route in LINK_ROUTES:
        body = await get(http, ds, link_path(foreign, route), WINDOW, status=404)
        assert body["error"]["code"] == "not_found", (route, body)
    rule = ds.rules[0]["id"]
    body = await get(http, ds, link_path(foreign, f"rules/{rule}/conditions"), WINDOW, 404)
    assert body["error"]["code"] == "not_found"
    # A link id that exists nowhere answers the same.
    for route in ("summary", "traffic-flow"):
        await get(http, ds, link_path({"id": 10**12}, route), WINDOW, status=404)
    # And the other workspace reads its own link fine.
    r = await http.get(link_path(foreign, "summary"), params=WINDOW, headers=other.headers)
    assert r.status_code == 200, r.text
    assert r.json()["data"]["totals"]["clicks"] == 0


async def test_devices_bad_by_is_400(http, ds):
    body = await get(
        http, ds, link_path(ds.link("spring-a"), "devices"), {**WINDOW, "by": "x"}, 400
    )
    assert body["error"]["code"] == "invalid_argument"


async def test_traffic_flow_weights_count_every_click_with_many_referrers(http, pg, ch):
    """60 clicks from 60 referrers to one destination: the destination edge weighs 60."""
    ws = await d.make_workspace(pg, timezone="UTC")
    link_id = ws.link_ids[0]
    columns = ("event_id", "workspace_id", "link_id", "timestamp", "referrer", "visitor_id")
    start = datetime(2026, 3, 24, 12, tzinfo=UTC)
    rows = [
        (7 * 10**12 + ws.workspace_id * 1000 + i, ws.workspace_id, link_id,
         start + timedelta(minutes=i), f"site{i:02d}.example", f"v{i}")
        for i in range(60)
    ]  # fmt: skip
    await ch.insert("clicks", columns, rows)
    r = await http.get(f"/api/analytics/{link_id}/traffic-flow", params=WINDOW, headers=ws.headers)
    assert r.status_code == 200, r.text
    edges = r.json()["data"]["edges"]
    out = [x for x in edges if x["source"] == f"link:{link_id}"]
    assert len(out) == 1 and out[0]["target"] == f"dst:https://example.org/{ws.workspace_id}/0"
    assert out[0]["weight"] == 60, edges
    into = [x for x in edges if x["target"] == f"link:{link_id}"]
    assert len(into) == 10 and all(x["weight"] == 1 for x in into)
