"""The dashboard page in headless Chromium against the dataset workspace: it holds the API's
numbers (and the model's), a click on a country filters the whole page, a live click appears,
an export completes and offers its file; screenshots at 1440 and 390 px (light and dark) are kept
under .run/screenshots/ (the embed widget's, at 320 and 1440 px, by tests/e2e/test_embed.py)."""

from __future__ import annotations

import asyncio
import csv
import gzip
import io
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests import cdp
from tests.conftest import ROOT
from tests.e2e import dataset as d

SHOTS = ROOT / ".run" / "screenshots"
WINDOW = {"start": "2026-03-24", "end": "2026-04-02", "timezone": d.TIMEZONE}
PREVIOUS = {"start": "2026-03-14", "end": "2026-03-23", "timezone": d.TIMEZONE}
# Each panel of the page and the route (with parameters) its rows come from.
PANELS = {
    "countries": ("/api/analytics/composite", {"dimension": "country"}),
    "devices": ("/api/analytics/workspace/devices", {"by": "device"}),
    "browsers": ("/api/analytics/workspace/devices", {"by": "browser"}),
    "referrers": ("/api/analytics/composite", {"dimension": "referrer"}),
    "campaigns": ("/api/analytics/workspace/campaigns/ranking", {}),
    "links": ("/api/analytics/composite", {"dimension": "link"}),
    "folders": ("/api/analytics/workspace/top-folders", {}),
    "tags": ("/api/analytics/workspace/top-tags", {}),
}
KPIS = ("clicks", "uniqueVisitors", "leads", "sales", "revenue")


@pytest.fixture(scope="module")
async def browser():  # noqa: ANN201
    """One headless Chromium for the module."""
    async with cdp.browser() as opened:
        yield opened


@pytest.fixture(scope="module")
async def link(http, ds) -> dict[str, Any]:
    """A dashboard token of the dataset workspace."""
    r = await http.post("/api/analytics/dashboard/tokens", json={}, headers=ds.headers)
    assert r.status_code == 200, r.text
    return r.json()["data"]


def page_url(system, link: dict[str, Any], **view: str) -> str:
    """The dashboard URL of link showing the test window (and any filters in view)."""
    fragment = httpx.QueryParams({"token": link["token"], "preset": "custom", **WINDOW, **view})
    return f"{system.gateway_url}/dashboard#{fragment}"


async def api(http, token: str, path: str, params: dict[str, Any]) -> dict[str, Any]:
    """The data of GET path as the dashboard token."""
    r = await http.get(path, params=params, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()["data"]
    return data


async def open_ready(page: cdp.Page, url: str) -> None:
    """Open url and wait for the page to have loaded its numbers once."""
    await page.goto(url)
    await page.wait_for("document.documentElement.dataset.state === 'ready'")


_PANEL_ROWS = """
Array.from(document.querySelectorAll('#panel-%s tbody tr')).map(tr => ({
  key: tr.dataset.key, clicks: Number(tr.dataset.clicks),
  label: tr.querySelector('th').textContent.trim(),
  text: tr.querySelector('td').textContent.trim()}))
"""
_KPIS = """
Object.fromEntries(Array.from(document.querySelectorAll('.kpi')).map(b => [b.dataset.metric,
  {value: Number(b.dataset.value), text: b.querySelector('.kpi-value').textContent}]))
"""
_CHART = """
Array.from(document.querySelectorAll('#chart table tbody tr')).map(tr => ({time: tr.dataset.time,
  current: Number(tr.querySelector('[data-series=current]').dataset.value),
  previous: Number(tr.querySelector('[data-series=previous]').dataset.value)}))
"""


# Elements whose text contrast is below 4.5:1 against the nearest opaque background.
_CONTRAST = """(() => {
  const rgb = c => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = v => (v /= 255) <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const behind = el => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || c[3] > 0.9) { return c; }
    }
    return rgb(getComputedStyle(document.body).backgroundColor);
  };
  const out = [];
  let checked = 0;
  const sel = '.kpi-title, .kpi-value, .kpi-change, .rates, .breakdown td, .breakdown th,' +
    ' .row-filter, .live-sub, .controls label, .controls button, .export p, .legend,' +
    ' h1, h2, .lp-axis-label, #live-count';
  for (const el of document.querySelectorAll(sel)) {
    if (!el.textContent.trim() || el.closest('.lp-sr-only')) { continue; }
    const style = getComputedStyle(el);
    const fg = rgb(el instanceof SVGElement ? style.fill : style.color);
    const a = lum(fg.slice(0, 3)), b = lum(behind(el).slice(0, 3));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    checked += 1;
    if (!(ratio >= 4.5)) { out.push([String(el.className.baseVal ?? el.className), ratio]); }
  }
  return {checked, low: out};
})()"""


async def panel_rows(page: cdp.Page, panel: str) -> list[dict[str, Any]]:
    """The rows a panel shows."""
    rows: list[dict[str, Any]] = await page.eval(_PANEL_ROWS % panel)
    return rows


async def assert_page_holds(page: cdp.Page, http, token: str, view: dict[str, str]) -> None:
    """Totals, chart and every panel on the page are what the routes answer for view."""
    params = {**WINDOW, **view}
    overview = await api(http, token, "/api/analytics/workspace/overview", params)
    kpis = await page.eval(_KPIS)
    for metric in KPIS:
        assert kpis[metric]["value"] == pytest.approx(overview["totals"][metric]), metric
    assert kpis["clicks"]["text"] == f"{overview['totals']['clicks']:,}"
    assert kpis["revenue"]["text"].startswith("€")

    series = "/api/analytics/workspace/timeseries"
    now = await api(http, token, series, {**params, "granularity": "day"})
    before = await api(http, token, series, {**PREVIOUS, **view, "granularity": "day"})
    chart = await page.eval(_CHART)
    assert [p["time"] for p in chart] == [p["time"] for p in now["points"]]
    assert [p["current"] for p in chart] == [p["clicks"] for p in now["points"]]
    assert [p["previous"] for p in chart] == [p["clicks"] for p in before["points"]]

    for panel, (path, extra) in PANELS.items():
        answer = await api(http, token, path, {**params, **extra, "limit": 10})
        shown = await panel_rows(page, panel)
        assert [(r["key"], r["clicks"]) for r in shown] == [
            (str(r["key"]), r["clicks"]) for r in answer["rows"]
        ], panel
        assert [r["text"] for r in shown] == [f"{r['clicks']:,}" for r in answer["rows"]], panel


async def test_the_dashboard_holds_the_apis_numbers_and_filters_by_a_click(
    system, http, ds, rates, browser, link
):
    page = await browser.new_page(1440)
    await open_ready(page, page_url(system, link))
    await assert_page_holds(page, http, link["token"], {})
    # The model's totals, computed from the inserted events, agree.
    expected = d.expect(ds, dict(WINDOW), rates).totals()
    kpis = await page.eval(_KPIS)
    assert kpis["clicks"]["value"] == expected["clicks"]
    assert kpis["leads"]["value"] == expected["leads"]
    countries = await panel_rows(page, "countries")
    assert {"Germany", "France", "United States"} <= {r["label"] for r in countries}

    # A click on Germany filters every panel, the totals and the chart.
    loads = await page.eval("Number(document.documentElement.dataset.loads)")
    await page.eval(
        "document.querySelector('#panel-countries tr[data-key=DE] button').click(), true"
    )
    await page.wait_for(
        f"Number(document.documentElement.dataset.loads) > {loads}"
        " && document.documentElement.dataset.state === 'ready'"
    )
    assert [r["key"] for r in await panel_rows(page, "countries")] == ["DE"]
    await assert_page_holds(page, http, link["token"], {"country": "DE"})
    expected = d.expect(ds, {**WINDOW, "country": "DE"}, rates).totals()
    assert (await page.eval(_KPIS))["clicks"]["value"] == expected["clicks"] > 0
    chip = await page.eval("document.querySelector('#filters .chip').textContent")
    assert "Germany" in chip
    assert "country=DE" in await page.eval("location.hash")

    await page.screenshot(SHOTS / "dashboard-1440-filtered.png")
    # Nothing was refused by the Content-Security-Policy, nothing failed in a script.
    problems = [
        e
        for e in browser.log_entries(page.session)
        if e.get("level") == "error" and "favicon" not in str(e)
    ]
    assert not problems, problems


async def test_live_clicks_and_an_export(system, http, ds, browser, link):
    page = await browser.new_page(1440)
    await open_ready(page, page_url(system, link))
    await page.wait_for(
        "document.documentElement.dataset.live === 'open'"
        " && document.documentElement.dataset.liveStats === 'loaded'"
    )
    count = await page.eval("Number(document.getElementById('live-count').dataset.value)")

    # A click tracked through the gateway appears in the open page's feed within a second.
    async with httpx.AsyncClient(base_url=system.gateway_url, timeout=30) as raw:
        r = await raw.post(
            "/api/track/click",
            json={
                "linkId": ds.links[0]["id"],
                "country": "JP",
                "timestamp": datetime.now(UTC).isoformat(),
            },
            headers=ds.headers,
        )
        tracked = time.monotonic()
    assert r.status_code == 200, r.text
    event_id = r.json()["data"]["eventIds"][0]
    item = f"document.querySelector('#live-feed li[data-event-id=\"{event_id}\"]')"
    await page.wait_for(f"!!{item}", seconds=10)
    assert time.monotonic() - tracked < 1.0
    assert "Japan" in await page.eval(f"{item}.textContent")
    assert await page.eval("document.querySelector('#live-feed li').dataset.eventId") == str(
        event_id
    )
    after = await page.eval("Number(document.getElementById('live-count').dataset.value)")
    assert after == count + 1
    # A page opened later lists it among the recent events.
    later = await browser.new_page(390)
    await open_ready(later, page_url(system, link))
    await later.wait_for(f"!!{item}")

    # The export button starts a job, shows its progress and offers the file.
    await page.eval("document.getElementById('export-start').click(), true")
    await page.wait_for("document.documentElement.dataset.export === 'succeeded'", seconds=90)
    href = await page.eval("document.getElementById('export-download').getAttribute('href')")
    assert href.startswith("/api/analytics/exports/") and "/download?token=" in href
    assert await page.eval("document.getElementById('export-progress').value") == 1
    assert not await page.eval("document.getElementById('export-download').hidden")
    r = await http.get(href)
    assert r.status_code == 200
    rows = list(csv.DictReader(io.StringIO(gzip.decompress(r.content).decode())))
    overview = await api(http, link["token"], "/api/analytics/workspace/overview", WINDOW)
    assert len(rows) == overview["totals"]["clicks"]
    shown = await page.eval("document.getElementById('export-download').textContent")
    assert f"{len(rows):,} clicks" in shown


async def reloaded(page: cdp.Page, action: str) -> None:
    """Run a script action that reloads the numbers; wait until they are in."""
    loads = await page.eval("Number(document.documentElement.dataset.loads)")
    await page.eval(f"({action}), true")
    await page.wait_for(
        f"Number(document.documentElement.dataset.loads) > {loads}"
        " && document.documentElement.dataset.state === 'ready'"
    )


async def test_the_controls_and_the_keyboard(system, http, browser, link):
    page = await browser.new_page(1440)
    await open_ready(page, page_url(system, link))
    # Another time zone through the form: the same days, other buckets and numbers.
    await reloaded(
        page,
        "document.getElementById('timezone').value = 'America/New_York',"
        " document.getElementById('controls').requestSubmit()",
    )
    await assert_page_holds(page, http, link["token"], {"timezone": "America/New_York"})
    assert "timezone=America%2FNew_York" in await page.eval("location.hash")
    # Another range: a week, hourly.
    await reloaded(
        page,
        "document.getElementById('start').value = '2026-03-28',"
        " document.getElementById('end').value = '2026-03-29',"
        " document.getElementById('controls').requestSubmit()",
    )
    chart = await page.eval(_CHART)
    hourly = await api(
        http,
        link["token"],
        "/api/analytics/workspace/timeseries",
        {"start": "2026-03-28", "end": "2026-03-29", "timezone": "America/New_York",
         "granularity": "hour"},
    )  # fmt: skip
    assert [p["time"] for p in chart] == [p["time"] for p in hourly["points"]]
    assert [p["current"] for p in chart] == [p["clicks"] for p in hourly["points"]]

    # The revenue figure switches the chart to revenue, in the workspace's currency.
    await page.eval("document.querySelector('.kpi[data-metric=revenue]').click(), true")
    await page.wait_for("document.getElementById('chart').dataset.metric === 'revenue'")
    chart = await page.eval(_CHART)
    assert [p["current"] for p in chart] == pytest.approx([p["revenue"] for p in hourly["points"]])
    assert await page.eval("document.getElementById('chart-title').textContent") == (
        "Revenue over time"
    )

    # The mouse over the chart's first bucket shows its tooltip.
    await page.eval("document.getElementById('main-chart').scrollIntoView(), true")
    box = await page.eval(
        "(r => [r.left, r.top, r.width, r.height])"
        "(document.getElementById('main-chart').getBoundingClientRect())"
    )
    await page.hover(box[0] + 60, box[1] + box[3] / 2)
    tip = await page.wait_for(
        "(t => !t.hidden && t.textContent)(document.querySelector('#chart .lp-tooltip'))"
    )
    labels = await page.eval(
        "Array.from(document.querySelectorAll('#chart tbody th')).map(th => th.textContent)"
    )
    assert tip.startswith(labels[0]) and "This period: €" in tip

    # The keyboard reads the chart bucket by bucket ...
    await page.eval("document.getElementById('main-chart').focus(), true")
    await page.press("End")
    await page.press("ArrowLeft")
    tip = await page.eval("document.querySelector('#chart .lp-tooltip').textContent")
    assert tip.startswith(labels[-2]) and "€" in tip
    # ... and filters with Enter on a row.
    loads = await page.eval("Number(document.documentElement.dataset.loads)")
    await page.eval("document.querySelector('#panel-devices tbody tr button').focus(), true")
    device = await page.eval("document.activeElement.closest('tr').dataset.key")
    await page.press("Enter")
    await page.wait_for(
        f"Number(document.documentElement.dataset.loads) > {loads}"
        " && document.documentElement.dataset.state === 'ready'"
    )
    assert [r["key"] for r in await panel_rows(page, "devices")] == [device]
    assert f"device={device}" in await page.eval("location.hash")


@pytest.mark.parametrize(("width", "scheme"), [(1440, "light"), (390, "light"), (390, "dark")])
async def test_screenshots(system, http, browser, link, width, scheme):
    page = await browser.new_page(width)
    await page.color_scheme(scheme)
    await open_ready(page, page_url(system, link))
    await page.wait_for("!!document.querySelector('#main-chart')")
    # The page fits the width: nothing scrolls sideways.
    wide = await page.eval(
        "Array.from(document.querySelectorAll('body *'))"
        f".filter(e => e.getBoundingClientRect().right > {width} + 0.5)"
        ".filter(e => !e.closest('.lp-sr-only'))"
        ".map(e => e.tagName + '#' + e.id + '.' + e.className)"
    )
    assert not wide
    assert await page.eval("window.innerWidth") == width
    # Keyboard: the chart takes focus and shows a tooltip for the bucket chosen.
    await page.eval("document.getElementById('main-chart').focus(), true")
    tip = await page.wait_for(
        "(t => t && !t.hidden && t.textContent)(document.querySelector('#chart .lp-tooltip'))"
    )
    assert "This period" in tip and "Previous period" in tip
    # Text is readable in either scheme: WCAG AA contrast (4.5:1) against what is behind it.
    contrast = await page.eval(_CONTRAST)
    assert contrast["checked"] > 100 and not contrast["low"], contrast["low"]
    await page.screenshot(SHOTS / f"dashboard-{width}-{scheme}.png")
    assert (SHOTS / f"dashboard-{width}-{scheme}.png").stat().st_size > 10_000


async def test_without_a_valid_token_the_page_says_so(system, http, ds, browser):
    r = await http.post("/api/analytics/dashboard/tokens", json={}, headers=ds.headers)
    made = r.json()["data"]
    page = await browser.new_page(1440)
    await page.goto(f"{system.gateway_url}/dashboard")
    await page.wait_for("document.documentElement.dataset.state === 'unauthorized'")
    await http.delete(f"/api/analytics/dashboard/tokens/{made['id']}", headers=ds.headers)
    await asyncio.sleep(1.2)  # AUTH_CACHE_SECONDS=1
    page = await browser.new_page(1440)
    await page.goto(f"{system.gateway_url}{made['dashboardPath']}")
    await page.wait_for("document.documentElement.dataset.state === 'unauthorized'")
    assert "revoked" in await page.eval("document.getElementById('status').textContent")


async def test_the_page_is_static_under_a_strict_csp(system, http):
    page = await http.get("/dashboard")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert "style-src 'self'" in csp and "unsafe" not in csp and "nonce" not in csp
    assert "<script>" not in page.text and " style=" not in page.text and "http" not in page.text
    assert page.headers["referrer-policy"] == "no-referrer"
    for asset in ("linkpulse-ui.js", "dashboard.js", "linkpulse-ui.css", "dashboard.css"):
        assert f"/static/{asset}?v=" in page.text
        r = await http.get(f"/static/{asset}")
        assert r.status_code == 200 and r.headers["x-content-type-options"] == "nosniff"
    assert (await http.get("/static/../app.py")).status_code == 404


async def test_panels_behind_a_plan_feature_say_so(system, http, tenant, browser):
    t = await tenant(plan="free", timezone="Asia/Tokyo")
    r = await http.post("/api/analytics/dashboard/tokens", json={}, headers=t.headers)
    made = r.json()["data"]
    page = await browser.new_page(390)
    await open_ready(page, f"{system.gateway_url}{made['dashboardPath']}")
    for panel in ("devices", "browsers"):
        note = await page.eval(f"document.querySelector('#panel-{panel} .panel-note').textContent")
        assert note == "Not included in this workspace's plan."
    note = await page.eval("document.querySelector('#panel-countries .panel-note').textContent")
    assert note == "No clicks in this range."
    # The workspace's own zone, asked of the API, is the page's.
    assert await page.eval("document.getElementById('timezone').value") == "Asia/Tokyo"
