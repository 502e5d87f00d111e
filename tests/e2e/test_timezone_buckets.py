"""Hour buckets start at local wall-clock hours, and at offset changes, in a zone whose offset
changes by 30 minutes (Lord Howe, +10:30 / +11:00), on every route that answers a timeseries."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from services.admin import credentials, links, tenants
from tests.conftest import DEFAULT_SCOPES, Tenant

API = "/api/analytics"
ZONE = "Australia/Lord_Howe"
# The issue's window: the spring-forward change (2026-10-04 02:00+10:30 -> 02:30+11:00) and the
# week after it.
SPRING = {"start": "2026-10-03", "end": "2026-10-12", "timezone": ZONE, "granularity": "hour"}
# (click, lead, sale) instants and the bucket each belongs in.
EVENTS = [
    (("2026-10-10T05:10:00Z", "2026-10-10T05:20:00Z", "2026-10-10T05:30:00Z"),
     "2026-10-10T16:00:00+11:00"),
    (("2026-10-04T03:10:00+11:00", "2026-10-04T03:15:00+11:00", "2026-10-04T03:20:00+11:00"),
     "2026-10-04T03:00:00+11:00"),
    # In the half hour that follows the change: the hour 02 of that day.
    (("2026-10-04T02:40:00+11:00", "2026-10-04T02:45:00+11:00", "2026-10-04T02:50:00+11:00"),
     "2026-10-04T02:30:00+11:00"),
]  # fmt: skip
# The fall-back change (2026-04-05 02:00+11:00 -> 01:30+10:30): the repeated half hour.
AUTUMN = {"start": "2026-04-05", "end": "2026-04-05", "timezone": ZONE, "granularity": "hour"}
AUTUMN_EVENTS = [
    (("2026-04-05T01:50:00+11:00",) * 3, "2026-04-05T01:00:00+11:00"),
    (("2026-04-05T01:40:00+10:30",) * 3, "2026-04-05T01:30:00+10:30"),
    (("2026-04-05T02:10:00+10:30",) * 3, "2026-04-05T02:00:00+10:30"),
]


@pytest.fixture(scope="module")
async def lord_howe(system, pg, http) -> Tenant:
    """A workspace with one link and the click, lead and sale of EVENTS and AUTUMN_EVENTS."""
    ws = await tenants.create_workspace(pg, "Lord Howe", plan="business", timezone=ZONE)
    key = await credentials.create_api_key(pg, ws["id"], list(DEFAULT_SCOPES))
    link = await links.create_link(
        pg, ws["id"], domain="t.lp", slug=f"lhi-{ws['id']}", destination_url="https://example.com"
    )
    t = Tenant(ws["id"], key["key"], [link["id"]])
    for n, ((click_at, lead_at, sale_at), _) in enumerate(EVENTS + AUTUMN_EVENTS):
        click = await http.post(
            "/api/track/click",
            json={"linkId": link["id"], "timestamp": click_at, "visitorId": f"v{n}"},
            headers=t.headers,
        )
        assert click.status_code == 200, click.text
        click_id = click.json()["data"]["eventIds"][0]
        lead = await http.post(
            "/api/track/lead",
            json={"clickId": click_id, "customerId": f"c{n}", "eventName": "Sign up",
                  "timestamp": lead_at},
            headers=t.headers,
        )  # fmt: skip
        assert lead.status_code == 200, lead.text
        sale = await http.post(
            "/api/track/sale",
            json={"clickId": click_id, "amount": 1000, "currency": "USD", "timestamp": sale_at},
            headers=t.headers,
        )
        assert sale.status_code == 200, sale.text
    return t


async def _points(http, t: Tenant, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    r = await http.get(f"{API}/{path}", params=params, headers=t.headers)
    assert r.status_code == 200, r.text
    return r.json()["data"]["points"]


def _spring_labels_ok(points: list[dict[str, Any]]) -> None:
    labels = [p["time"] for p in points]
    assert len(labels) == 240  # ten local days; the change day's 23.5 hours in 24 buckets
    assert len(set(labels)) == 240
    assert [x for x in labels if x[14:19] != "00:00"] == ["2026-10-04T02:30:00+11:00"]


def _non_zero(points: list[dict[str, Any]], metric: str) -> dict[str, Any]:
    return {p["time"]: p[metric] for p in points if p[metric]}


async def test_link_timeseries_of_the_issue(http, lord_howe):
    link = lord_howe.link_ids[0]
    points = await _points(http, lord_howe, f"{link}/timeseries", SPRING)
    _spring_labels_ok(points)
    assert _non_zero(points, "clicks") == {bucket: 1 for _, bucket in EVENTS}
    assert _non_zero(points, "uniqueVisitors") == {bucket: 1 for _, bucket in EVENTS}


@pytest.mark.parametrize(
    ("path", "metrics"),
    [
        ("workspace/timeseries", ("clicks",)),
        ("leads/timeseries", ("leads",)),
        ("sales/timeseries", ("sales", "revenue")),
        ("composite", ("clicks", "leads", "sales", "revenue")),
    ],
)
async def test_every_timeseries_route(http, lord_howe, path, metrics):
    points = await _points(http, lord_howe, path, SPRING)
    _spring_labels_ok(points)
    per_event = {"clicks": 1, "leads": 1, "sales": 1, "revenue": 10.0}
    for metric in metrics:
        assert _non_zero(points, metric) == {b: per_event[metric] for _, b in EVENTS}, metric


async def test_fall_back_day(http, lord_howe):
    points = await _points(http, lord_howe, "composite", AUTUMN)
    labels = [p["time"] for p in points]
    assert len(labels) == 25  # 24.5 local hours: 00, 01, 01:30 (again, +10:30), 02 … 23
    assert labels[:4] == [
        "2026-04-05T00:00:00+11:00",
        "2026-04-05T01:00:00+11:00",
        "2026-04-05T01:30:00+10:30",
        "2026-04-05T02:00:00+10:30",
    ]
    for metric in ("clicks", "leads", "sales"):
        assert _non_zero(points, metric) == {b: 1 for _, b in AUTUMN_EVENTS}, metric


async def test_export_timeseries(http, lord_howe):
    r = await http.get(
        f"{API}/export", params={**SPRING, "dataset": "timeseries"}, headers=lord_howe.headers
    )
    assert r.status_code == 200, r.text
    rows = list(csv.DictReader(io.StringIO(r.content.decode())))
    route = await _points(http, lord_howe, "composite", SPRING)
    assert [row["time"] for row in rows] == [p["time"] for p in route]
    found = {row["time"]: (int(row["clicks"]), int(row["leads"])) for row in rows}
    assert {k: v for k, v in found.items() if v != (0, 0)} == {b: (1, 1) for _, b in EVENTS}
