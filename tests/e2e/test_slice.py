"""A click goes in over REST and gRPC, lands in ClickHouse and comes back out of the routes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services import protos

UA_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)
UA_BOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


async def test_rest_and_grpc_ingest_are_counted_exactly(system, http, ch, tenant):
    t = await tenant()
    link_a, link_b = t.link_ids
    base = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
    # Over REST: 3 clicks on link A by two visitors.
    for i, visitor in enumerate(["v1", "v1", "v2"]):
        body = {
            "linkId": link_a,
            "timestamp": (base + timedelta(minutes=i)).isoformat(),
            "visitorId": visitor,
            "country": "DE",
            "userAgent": UA_IPHONE,
        }
        r = await http.post("/api/track/click", json=body, headers=t.headers)
        assert r.status_code == 200, r.text
        assert r.json()["success"] is True
        assert r.json()["data"]["accepted"] == 1
    # Over gRPC: a batch of 5 clicks on link B, a day later, by visitors v2..v6.
    events = [
        protos.live_pb2.ClickEvent(
            link_id=link_b,
            timestamp=(base + timedelta(days=1, hours=i)).isoformat(),
            visitor_id=f"v{i + 2}",
            referrer_url="https://news.example.com/story",
        )
        for i in range(5)
    ]
    async with system.channel("live") as channel:
        reply = await protos.live_pb2_grpc.LiveServiceStub(channel).Ingest(
            protos.live_pb2.IngestRequest(events=events), metadata=t.metadata
        )
    assert reply.accepted == 5 and len(set(reply.event_ids)) == 5
    await system.drained()  # ingestion is asynchronous: the flusher writes to ClickHouse

    stored = await ch.fetch(
        "SELECT link_id, device, os, continent, referrer FROM clicks WHERE workspace_id = %(w)s"
        " ORDER BY timestamp",
        {"w": t.workspace_id},
    )
    assert len(stored) == 8
    assert stored[0][1:4] == ("mobile", "iOS", "EU")  # parsed from the UA, continent from country
    assert stored[-1][4] == "news.example.com"  # referrer host from referrer_url

    params = {"start": "2026-11-01", "end": "2026-11-07", "timezone": "UTC"}
    r = await http.get("/api/analytics/workspace/overview", params=params, headers=t.headers)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["totals"]["clicks"] == 8
    assert data["totals"]["uniqueVisitors"] == 6  # v1..v6
    assert data["previous"]["clicks"] == 0
    assert data["meta"]["source"] == "clickhouse"

    r = await http.get(
        "/api/analytics/workspace/overview", params={**params, "linkId": link_a}, headers=t.headers
    )
    assert r.json()["data"]["totals"]["clicks"] == 3
    assert r.json()["data"]["totals"]["uniqueVisitors"] == 2

    r = await http.get(
        "/api/analytics/workspace/timeseries",
        params={**params, "granularity": "day"},
        headers=t.headers,
    )
    points = r.json()["data"]["points"]
    assert [p["time"] for p in points][:3] == [
        "2026-11-01T00:00:00+00:00",
        "2026-11-02T00:00:00+00:00",
        "2026-11-03T00:00:00+00:00",
    ]
    assert len(points) == 7
    assert [p["clicks"] for p in points] == [0, 3, 5, 0, 0, 0, 0]


async def test_previous_period_and_bots(system, http, tenant):
    t = await tenant()
    link = t.link_ids[0]
    clicks = [
        # current period: 2 humans + 1 bot; previous period (the 7 days before): 1 human
        {"linkId": link, "timestamp": "2026-10-12T12:00:00Z", "visitorId": "a"},
        {"linkId": link, "timestamp": "2026-10-13T12:00:00Z", "visitorId": "b"},
        {"linkId": link, "timestamp": "2026-10-13T13:00:00Z", "userAgent": UA_BOT},
        {"linkId": link, "timestamp": "2026-10-06T12:00:00Z", "visitorId": "c"},
    ]
    for body in clicks:
        r = await http.post("/api/track/click", json=body, headers=t.headers)
        assert r.status_code == 200, r.text
    params = {"start": "2026-10-12", "end": "2026-10-18"}
    data = (
        await http.get("/api/analytics/workspace/overview", params=params, headers=t.headers)
    ).json()["data"]
    assert data["totals"]["clicks"] == 2
    assert data["previous"]["clicks"] == 1
    assert data["meta"]["previousStart"].startswith("2026-10-05")
    with_bots = await http.get(
        "/api/analytics/workspace/overview",
        params={**params, "includeBots": "true"},
        headers=t.headers,
    )
    assert with_bots.json()["data"]["totals"]["clicks"] == 3


async def test_grpc_query_matches_rest(system, http, tenant):
    t = await tenant()
    r = await http.post(
        "/api/track/click",
        json={"linkId": t.link_ids[0], "timestamp": "2026-09-01T08:00:00Z"},
        headers=t.headers,
    )
    assert r.status_code == 200
    query = protos.common_pb2.AnalyticsQuery(start="2026-09-01", end="2026-09-01")
    async with system.channel("query") as channel:
        reply = await protos.query_pb2_grpc.QueryServiceStub(channel).GetWorkspaceOverview(
            query, metadata=t.metadata
        )
    assert reply.totals.clicks == 1
    rest = await http.get(
        "/api/analytics/workspace/overview",
        params={"start": "2026-09-01", "end": "2026-09-01"},
        headers=t.headers,
    )
    assert rest.json()["data"]["totals"]["clicks"] == reply.totals.clicks
