"""Bad parameters answer 400 with the error envelope naming the parameter."""

from __future__ import annotations

import pytest

OVERVIEW = "/api/analytics/workspace/overview"
TIMESERIES = "/api/analytics/workspace/timeseries"


@pytest.mark.parametrize(
    ("route", "params", "named"),
    [
        (OVERVIEW, {"days": "abc"}, "days"),
        (OVERVIEW, {"days": "0"}, "days"),
        (OVERVIEW, {"days": "-3"}, "days"),
        (OVERVIEW, {"days": "100000"}, "days"),
        (OVERVIEW, {"days": "7", "start": "2026-01-01"}, "days"),
        (OVERVIEW, {"start": "yesterday"}, "start"),
        (OVERVIEW, {"start": "2026-02-30"}, "start"),
        (OVERVIEW, {"end": "2026-01-01"}, "start"),
        (OVERVIEW, {"start": "2026-03-01", "end": "2026-02-01"}, "end"),
        (OVERVIEW, {"start": "2026-01-01", "end": "not-a-date"}, "end"),
        (TIMESERIES, {"timezone": "Mars/Olympus_Mons"}, "timezone"),
        (TIMESERIES, {"timezone": "CEST"}, "timezone"),
        (TIMESERIES, {"granularity": "fortnight"}, "granularity"),
        (TIMESERIES, {"days": "365", "granularity": "hour"}, "granularity"),
        (TIMESERIES, {"linkId": "x"}, "linkId"),
        (TIMESERIES, {"includeBots": "maybe"}, "includeBots"),
        (TIMESERIES, {"dayz": "7"}, "dayz"),
    ],
)
async def test_bad_parameters_are_400(system, http, tenant, route, params, named):
    t = await tenant()
    r = await http.get(route, params=params, headers=t.headers)
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["success"] is False
    assert body["error"]["code"] == "invalid_argument"
    assert named in body["error"]["message"]


async def test_days_beyond_the_plan_are_capped_with_a_notice(system, http, tenant):
    t = await tenant(plan="free")  # 30 days of history
    r = await http.get(OVERVIEW, params={"days": "90"}, headers=t.headers)
    assert r.status_code == 200, r.text
    meta = r.json()["data"]["meta"]
    assert any("capped at 30" in n for n in meta["notices"])


async def test_explicit_range_beyond_the_plan_is_400(system, http, tenant):
    t = await tenant(plan="free")
    r = await http.get(
        OVERVIEW, params={"start": "2025-01-01", "end": "2025-12-31"}, headers=t.headers
    )
    assert r.status_code == 400
    assert "start" in r.json()["error"]["message"] or r.json()["error"].get("field") == "start"


async def test_unsupported_currency_falls_back_and_says_so(system, http, tenant):
    t = await tenant(currency="EUR")
    r = await http.get(OVERVIEW, params={"currency": "XYZ"}, headers=t.headers)
    meta = r.json()["data"]["meta"]
    assert meta["currency"] == "EUR"
    assert any("XYZ" in n for n in meta["notices"])
    r = await http.get(OVERVIEW, params={"currency": "gbp"}, headers=t.headers)
    assert r.json()["data"]["meta"]["currency"] == "GBP"


async def test_link_of_unknown_id_is_404(system, http, tenant):
    t = await tenant()
    r = await http.get(OVERVIEW, params={"linkId": "999999999"}, headers=t.headers)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"


async def test_ingest_validation(system, http, tenant):
    t = await tenant()
    cases = [
        ({"linkId": 999999999}, 404, "not found"),
        ({"linkId": t.link_ids[0], "timestamp": "2999-01-01T00:00:00Z"}, 400, "future"),
        ({"linkId": t.link_ids[0], "timestamp": "last tuesday"}, 400, "timestamp"),
        ({"linkId": t.link_ids[0], "country": "Germany"}, 400, "country"),
        ({"linkId": "abc"}, 400, "linkId"),
        ({}, 400, "link_id"),
    ]
    for body, status, word in cases:
        r = await http.post("/api/track/click", json=body, headers=t.headers)
        assert r.status_code == status, (body, r.text)
        assert r.json()["success"] is False
        assert word.lower() in r.text.lower(), (body, r.text)
