"""Absent values are null in every answer, never "" or 0 placeholders: the previous period, the
fallback's dataAsOf, the cursor of a last page, an export job's end, a token shown only once."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message

from services import protos
from services.contract.fields import is_map, is_message, is_optional_scalar

API = "/api/analytics"
WINDOW = {"start": "2026-01-01", "end": "2026-01-03", "timezone": "UTC"}


def placeholders(data: Any, message: Descriptor, path: str = "") -> list[str]:
    """Where an answer holds an `optional` field missing or "" instead of null (or a value)."""
    found = []
    for field in message.fields:
        key, where = field.json_name, f"{path}{field.json_name}"
        if key not in data:
            if is_optional_scalar(field):
                found.append(f"{where}: no key (absent must be null)")
            continue
        value = data[key]
        if is_optional_scalar(field) and value == "":
            found.append(f'{where}: "" (absent must be null)')
        if not is_message(field) or is_map(field) or value is None:
            continue
        if field.message_type.full_name.startswith("google.protobuf."):
            continue
        for i, item in enumerate(value if field.is_repeated else [value]):
            at = f"{where}[{i}]." if field.is_repeated else f"{where}."
            found += placeholders(item, field.message_type, at)
    return found


async def answer(http, t, method: str, path: str, message: type[Message], **kwargs: Any) -> Any:
    """The data of a 2xx answer, checked for placeholders against its message."""
    r = await http.request(method, path, headers=t.headers, **kwargs)
    assert r.status_code in (200, 202), r.text
    data = r.json()["data"]
    assert placeholders(data, message.DESCRIPTOR) == [], data
    return data


async def test_meta_previous_period_and_data_as_of(http, tenant):
    t = await tenant()
    overview = await answer(
        http, t, "GET", f"{API}/workspace/overview", protos.common_pb2.OverviewResponse,
        params=WINDOW,
    )  # fmt: skip
    meta = overview["meta"]
    assert meta["source"] == "clickhouse" and meta["dataAsOf"] is None
    assert meta["previousStart"] == "2025-12-29T00:00:00+00:00"
    assert meta["previousEnd"] == meta["start"] == "2026-01-01T00:00:00+00:00"
    series = await answer(
        http, t, "GET", f"{API}/workspace/timeseries", protos.common_pb2.TimeseriesResponse,
        params=WINDOW,
    )  # fmt: skip
    assert series["meta"]["previousStart"] is None and series["meta"]["previousEnd"] is None
    composite = await answer(
        http, t, "GET", f"{API}/composite", protos.query_pb2.CompositeResponse, params=WINDOW
    )
    assert composite["dimension"] is None and len(composite["points"]) == 3


async def test_query_meta_with_and_without_compare(http, tenant):
    t = await tenant()
    response = protos.analytics_query_pb2.QueryResponse
    body = {"metrics": ["clicks"], "dimensions": ["country"], **WINDOW}
    plain = await answer(http, t, "POST", f"{API}/query", response, json=body)
    meta = plain["meta"]
    assert meta["compare"] is None and meta["granularity"] is None
    assert meta["previousStart"] is None and meta["previousEnd"] is None
    assert meta["dataAsOf"] is None and plain["nextCursor"] is None
    body = {**body, "dimensions": ["time:day"], "compare": "previous_period", "limit": 2}
    compared = await answer(http, t, "POST", f"{API}/query", response, json=body)
    meta = compared["meta"]
    assert meta["compare"] == "previous_period" and meta["granularity"] == "day"
    assert meta["previousStart"] == "2025-12-29T00:00:00+00:00"
    assert len(compared["rows"]) == 2 and compared["nextCursor"]  # three days, zeros included
    last = await answer(
        http, t, "POST", f"{API}/query", response,
        json={**body, "cursor": compared["nextCursor"]},
    )  # fmt: skip
    assert len(last["rows"]) == 1 and last["nextCursor"] is None


async def test_last_pages_have_a_null_cursor(http, tenant):
    t = await tenant()
    live = await answer(http, t, "GET", f"{API}/live", protos.live_pb2.LiveResponse)
    assert live["events"] == [] and live["nextCursor"] is None
    details = await answer(
        http, t, "GET", f"{API}/conversions/details",
        protos.query_pb2.ConversionDetailsResponse, params=WINDOW,
    )  # fmt: skip
    assert details["events"] == [] and details["nextCursor"] is None
    await http.post(f"{API}/embed/tokens", json={}, headers=t.headers)  # an audited action
    audit = protos.audit_pb2.ListAuditLogResponse
    log = await answer(http, t, "GET", f"{API}/audit-log", audit)
    assert log["entries"] and log["nextCursor"] is None
    raw = await http.post(
        "/v1/analytics", json={"start": "2026-01-01", "end": "2026-01-03"}, headers=t.headers
    )
    assert raw.status_code == 200, raw.text
    assert raw.json()["data"] == [] and raw.json()["next_cursor"] is None  # the seed's snake_case


async def wait_export(http, t, job_id: str) -> dict[str, Any]:
    """The export job once it has ended."""
    deadline = time.monotonic() + 60
    while True:
        job = await answer(http, t, "GET", f"{API}/exports/{job_id}", protos.export_pb2.ExportJob)
        if job["status"] not in ("queued", "running"):
            return job
        assert time.monotonic() < deadline, job
        await asyncio.sleep(0.2)


async def test_export_jobs_before_and_after_they_end(http, tenant):
    t = await tenant()
    job_message = protos.export_pb2.ExportJob
    params = {**WINDOW, "dataset": "clicks"}
    queued = await answer(http, t, "POST", f"{API}/exports", job_message, params=params)
    assert queued["status"] == "queued" and queued["rowsEstimated"] == 0  # counted: none
    for name in ("finishedAt", "error", "downloadUrl", "expiresAt", "downloadExpiresAt"):
        assert queued[name] is None, name
    done = await wait_export(http, t, queued["id"])
    assert done["status"] == "succeeded" and done["error"] is None
    for name in ("finishedAt", "downloadUrl", "expiresAt", "downloadExpiresAt"):
        assert isinstance(done[name], str) and done[name], name
    params = {**WINDOW, "dataset": "timeseries"}
    aggregated = await answer(http, t, "POST", f"{API}/exports", job_message, params=params)
    assert aggregated["rowsEstimated"] is None  # not counted up front
    assert aggregated["progress"] is None and queued["progress"] == 0
    assert (await wait_export(http, t, aggregated["id"]))["progress"] == 1
    listed = await answer(http, t, "GET", f"{API}/exports", protos.export_pb2.ListExportsResponse)
    assert len(listed["jobs"]) == 2 and listed["nextCursor"] is None


async def test_batch_job_and_its_stored_results(http, tenant):
    t = await tenant()
    items = [
        {"id": "o", "route": f"{API}/workspace/overview", "params": WINDOW},
        {"id": "gone", "route": f"{API}/{t.link_ids[0] + 10**9}/geo", "params": WINDOW},
    ]
    job_message = protos.export_pb2.BatchJob
    queued = await answer(http, t, "POST", f"{API}/batch", job_message, json={"queries": items})
    assert queued["status"] in ("queued", "running") and queued["finishedAt"] is None
    deadline = time.monotonic() + 30
    job = queued
    while job["status"] != "succeeded":
        assert time.monotonic() < deadline, job
        await asyncio.sleep(0.1)
        job = await answer(http, t, "GET", f"{API}/batch/{queued['id']}", job_message)
    assert job["finishedAt"]
    meta = job["results"][0]["data"]["meta"]  # stored as JSON, read back: the nulls stay
    assert meta["dataAsOf"] is None and meta["previousStart"] == "2025-12-29T00:00:00+00:00"
    error = job["results"][1]["error"]
    assert error["code"] == "not_found" and error["field"] is None


async def test_tokens_shown_once_and_not_revoked(http, tenant):
    t = await tenant()
    embed = f"{API}/embed/tokens"
    token, listing = protos.query_pb2.EmbedToken, protos.query_pb2.ListEmbedTokensResponse
    whole = await answer(http, t, "POST", embed, token, json={"days": 7})
    assert whole["token"] and whole["embedPath"] and whole["revokedAt"] is None
    assert whole["linkId"] is None  # the whole workspace
    one = await answer(http, t, "POST", embed, token, json={"linkId": t.link_ids[0]})
    assert one["linkId"] == t.link_ids[0]
    listed = (await answer(http, t, "GET", embed, listing))["tokens"]
    assert len(listed) == 2
    assert all(x["token"] is None and x["embedPath"] is None for x in listed)
    revoked = await answer(http, t, "DELETE", f"{embed}/{whole['id']}", token)
    assert revoked["revokedAt"] and revoked["token"] is None
    dashboard = f"{API}/dashboard/tokens"
    message = protos.dashboard_pb2.DashboardToken
    made = await answer(http, t, "POST", dashboard, message, json={"label": "tv"})
    assert made["token"] and made["dashboardPath"] and made["revokedAt"] is None
    listing = protos.dashboard_pb2.ListDashboardTokensResponse
    (shown,) = (await answer(http, t, "GET", dashboard, listing))["tokens"]
    assert shown["token"] is None and shown["dashboardPath"] is None and shown["revokedAt"] is None


async def test_live_events_have_null_for_what_their_kind_lacks(http, tenant):
    t = await tenant()
    click = {"linkId": t.link_ids[0], "country": "DE"}  # no user agent: no device
    r = await http.post("/api/track/click", json=click, headers=t.headers)
    assert r.status_code == 200, r.text
    live = await answer(http, t, "GET", f"{API}/live", protos.live_pb2.LiveResponse)
    (event,) = live["events"]
    assert event["kind"] == "click" and event["linkId"] == t.link_ids[0]
    assert event["country"] == "DE" and event["city"] is None and event["device"] is None
    assert event["customerId"] is None and event["amount"] is None and event["currency"] is None


async def test_a_budget_not_begun_has_no_pacing(http, pg, tenant):
    t = await tenant()
    today = datetime.now(UTC).date()
    campaign = await pg.fetchval(
        "INSERT INTO campaigns (workspace_id, name) VALUES ($1, 'later') RETURNING id",
        t.workspace_id,
    )
    await pg.execute(
        "INSERT INTO budgets (workspace_id, campaign_id, amount_minor, currency,"
        " cost_per_click_minor, period_start, period_end)"
        " VALUES ($1, $2, 10000, 'EUR', 10, $3, $4)",
        t.workspace_id,
        campaign,
        today + timedelta(days=5),
        today + timedelta(days=30),
    )
    params = {"start": str(today), "end": str(today + timedelta(days=10)), "currency": "EUR"}
    data = await answer(
        http, t, "GET", f"{API}/workspace/budgets", protos.query_pb2.BudgetsResponse,
        params=params,
    )  # fmt: skip
    (row,) = data["rows"]
    assert row["spend"] == 0 and row["budget"] == 100 and row["pacing"] is None
