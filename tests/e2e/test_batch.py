"""Batch queries against the real system: run by the session's arq worker as their caller."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.e2e.test_export import END, START, T0, insert_clicks

BATCH = "/api/analytics/batch"
WINDOW = {"start": START, "end": END, "timezone": "UTC"}


@pytest.fixture(scope="module")
async def clicked(pg, ch, system):
    """A business workspace with clicks, and a free one (no device analytics)."""
    from tests.conftest import create_tenant

    made = [await create_tenant(pg, plan=plan) for plan in ("business", "free")]
    await insert_clicks(ch, made[0].workspace_id, made[0].link_ids, 3_000, 50_000_000, T0)
    return made


def queries(link_id: int) -> list[dict]:
    """Items over several kinds of route."""
    return [
        {"id": "overview", "route": "/api/analytics/workspace/overview", "params": WINDOW},
        {
            "id": "series",
            "route": "/api/analytics/workspace/timeseries",
            "params": {**WINDOW, "granularity": "day"},
        },
        {
            "id": "countries",
            "route": "/api/analytics/:linkId/geo",
            "params": {**WINDOW, "linkId": str(link_id)},
        },
        {
            "id": "devices",
            "route": f"/api/analytics/{link_id}/devices",
            "params": {**WINDOW, "by": "browser"},
        },
        {
            "id": "leads-by-country",
            "route": "/api/analytics/leads/breakdown",
            "params": {**WINDOW, "dimension": "country", "country": "-BR"},
        },
    ]


def individual_path(item: dict) -> tuple[str, dict]:
    """The plain GET of a batch item."""
    params = dict(item["params"])
    route = item["route"]
    if ":linkId" in route:
        route = route.replace(":linkId", params.pop("linkId"))
    return route, params


async def test_a_batch_answers_what_the_routes_answer(http, pg, clicked):
    owner, _ = clicked
    items = queries(owner.link_ids[0])
    r = await http.post(BATCH, json={"queries": items, "wait": True}, headers=owner.headers)
    assert r.status_code == 200, r.text
    job = r.json()["data"]
    assert job["status"] == "succeeded" and job["items"] == len(items)
    assert "x-cache" not in r.headers
    by_id = {result["id"]: result for result in job["results"]}
    assert list(by_id) == [item["id"] for item in items]
    for item in items:
        route, params = individual_path(item)
        alone = await http.get(
            route, params=params, headers={**owner.headers, "Cache-Control": "no-store"}
        )
        assert alone.status_code == 200, alone.text
        result = by_id[item["id"]]
        assert result["ok"] and result["route"] == item["route"]
        assert result["data"] == alone.json()["data"], item["id"]
    overview = by_id["overview"]["data"]["totals"]
    assert overview["clicks"] == 3_000 - 60  # bots left out
    logged = await pg.fetchval(
        "SELECT count(*) FROM audit_log WHERE workspace_id = $1 AND action = 'batch.created'"
        " AND target = $2",
        owner.workspace_id,
        f"batch:{job['id']}",
    )
    assert logged == 1


async def test_without_wait_it_is_a_job_to_poll(http, clicked):
    owner, _ = clicked
    items = queries(owner.link_ids[1])[:2]
    r = await http.post(BATCH, json={"queries": items}, headers=owner.headers)
    assert r.status_code == 202, r.text
    job = r.json()["data"]
    assert job["status"] in ("queued", "running") and job["results"] == []
    deadline = time.monotonic() + 30
    while job["status"] != "succeeded":
        assert time.monotonic() < deadline, job
        await asyncio.sleep(0.1)
        r = await http.get(f"{BATCH}/{job['id']}", headers=owner.headers)
        assert r.status_code == 200
        job = r.json()["data"]
    assert [res["ok"] for res in job["results"]] == [True, True]


async def test_item_errors_are_per_item(http, clicked):
    owner, free = clicked
    items = [
        {"id": "bad-range", "route": "/api/analytics/workspace/overview", "params": {"days": "0"}},
        {"id": "foreign-link", "route": "/api/analytics/999999/summary", "params": {}},
        {"id": "fine", "route": "/api/analytics/workspace/overview", "params": WINDOW},
    ]
    r = await http.post(BATCH, json={"queries": items, "wait": True}, headers=owner.headers)
    results = {res["id"]: res for res in r.json()["data"]["results"]}
    assert results["bad-range"]["ok"] is False
    assert results["bad-range"]["error"]["field"] == "days"
    assert results["foreign-link"]["error"]["code"] == "not_found"
    assert results["fine"]["ok"] is True
    # The caller's plan applies to each item as it does to the route.
    gated = [{"id": "d", "route": "/api/analytics/workspace/devices", "params": {}}]
    r = await http.post(BATCH, json={"queries": gated, "wait": True}, headers=free.headers)
    [result] = r.json()["data"]["results"]
    assert result["ok"] is False and result["error"]["code"] == "feature_not_enabled"


@pytest.mark.parametrize(
    ("queries_", "field"),
    [
        ([], "queries"),
        ([{"route": "/api/analytics/nowhere", "params": {}}], "queries[0].route"),
        ([{"route": "", "params": {}}], "queries[0].route"),
        (
            [
                {"route": "/api/analytics/workspace/overview", "params": {}},
                {"route": "/api/analytics/workspace/overview", "params": {"days": "abc"}},
            ],
            "queries[1].params.days",
        ),
        (
            [{"route": "/api/analytics/workspace/overview", "params": {"sneaky": "1"}}],
            "queries[0].params.sneaky",
        ),
        ([{"route": "/api/analytics/:linkId/summary", "params": {}}], "queries[0].params.linkId"),
        ([{"route": "/api/analytics/export", "params": {}}], "queries[0].route"),
        ([{"route": "/api/analytics/workspace/overview"}] * 51, "queries"),
    ],
)
async def test_bad_batches_are_400_naming_the_item(http, clicked, queries_, field):
    owner, _ = clicked
    r = await http.post(BATCH, json={"queries": queries_}, headers=owner.headers)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["field"] == field


async def test_another_workspace_never_sees_a_batch(http, clicked):
    owner, other = clicked
    items = [{"id": "o", "route": "/api/analytics/workspace/overview", "params": WINDOW}]
    r = await http.post(BATCH, json={"queries": items, "wait": True}, headers=owner.headers)
    batch_id = r.json()["data"]["id"]
    assert (await http.get(f"{BATCH}/{batch_id}", headers=other.headers)).status_code == 404
    assert (await http.get(f"{BATCH}/{batch_id}", headers=owner.headers)).status_code == 200
    assert (await http.get(f"{BATCH}/bat_unknown", headers=owner.headers)).status_code == 404
