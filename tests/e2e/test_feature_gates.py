"""Plan feature gates: device analytics and deep links (traffic flow, click paths)."""

from __future__ import annotations

import pytest

from tests.e2e import dataset as d
from tests.e2e.dataset import WINDOW

DEVICE_ROUTES = ("/api/analytics/workspace/devices", "/api/analytics/{link}/devices")
DEEP_ROUTES = ("/api/analytics/{link}/traffic-flow", "/api/analytics/{link}/click-paths")
OPEN_ROUTES = (
    "/api/analytics/workspace/overview",
    "/api/analytics/workspace/regions",
    "/api/analytics/{link}/summary",
    "/api/analytics/{link}/geo",
    "/api/analytics/{link}/rules",
    "/api/analytics/funnel",
)
# plan -> (device analytics, deep links), as migrations/postgres/0001_core.sql grants them.
PLANS = {
    "free": (False, False),
    "pro": (True, False),
    "business": (True, True),
    "enterprise": (True, True),
}


async def check(http, ws: d.Workspace, route: str, allowed: bool) -> None:
    path = route.format(link=ws.link_ids[0])
    r = await http.get(path, params=WINDOW, headers=ws.headers)
    if allowed:
        assert r.status_code == 200, (path, r.text)
        assert r.json()["success"] is True
        return
    assert r.status_code == 403, (path, r.text)
    body = r.json()
    assert body["success"] is False
    assert body["error"]["code"] == "feature_not_enabled", body


@pytest.mark.parametrize("plan", PLANS)
async def test_plan_gates(http, pg, system, plan):
    devices, deep = PLANS[plan]
    ws = await d.make_workspace(pg, plan=plan, timezone="Europe/Berlin")
    for route in DEVICE_ROUTES:
        await check(http, ws, route, devices)
    for route in DEEP_ROUTES:
        await check(http, ws, route, deep)
    for route in OPEN_ROUTES:
        await check(http, ws, route, True)


async def test_gated_answers_carry_data_when_allowed(http, pg, ch, system):
    """On business the gated routes answer the dataset's numbers (not an empty shell)."""
    ds = await d.build(pg, ch)
    rates = await d.fx_rates(pg)
    e = d.expect(ds, dict(WINDOW), rates)
    r = await http.get(
        "/api/analytics/workspace/devices", params={**WINDOW, "by": "os"}, headers=ds.headers
    )
    assert r.status_code == 200, r.text
    want = d.breakdown(e.all(), lambda ev: [ev["os"]], target=e.currency, rates=rates)
    d.assert_rows(r.json()["data"]["rows"], want)
    link = ds.link("spring-a")
    r = await http.get(
        f"/api/analytics/{link['id']}/traffic-flow", params=WINDOW, headers=ds.headers
    )
    assert r.status_code == 200, r.text
    weights = [x["weight"] for x in r.json()["data"]["edges"]]
    clicks = [c for c in e.pick("clicks") if c["link_id"] == link["id"]]
    assert sum(weights) == 2 * len(clicks)  # into the link and out of it


async def test_extra_features_open_a_gate(http, pg, system):
    ws = await d.make_workspace(pg, plan="pro")
    await pg.execute(
        "UPDATE workspaces SET extra_features = '{deep_links}' WHERE id = $1", ws.workspace_id
    )
    for route in DEEP_ROUTES + DEVICE_ROUTES:
        await check(http, ws, route, True)


async def test_gate_applies_to_another_plans_link_too(http, pg, system):
    """A free workspace is refused the gated route whatever the link; no data leaks by 404/200."""
    free = await d.make_workspace(pg, plan="free")
    business = await d.make_workspace(pg, plan="business")
    for route in DEEP_ROUTES + DEVICE_ROUTES[1:]:
        path = route.format(link=business.link_ids[0])
        r = await http.get(path, params=WINDOW, headers=free.headers)
        assert r.status_code in (403, 404), r.text
        r = await http.get(path, params=WINDOW, headers=business.headers)
        assert r.status_code == 200, r.text
