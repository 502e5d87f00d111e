"""The snapshot cache on the running system: a HIT only for a key authorized for that route
within AUTH_CACHE_SECONDS, and only its own workspace's snapshot."""

from __future__ import annotations

import asyncio

from services import protos
from services.admin import credentials
from services.grpc_server.interceptors import WORKSPACE_TRAILER

OVERVIEW = "/api/analytics/workspace/overview"
DAY = {"start": "2026-06-01", "end": "2026-06-01", "timezone": "UTC"}


async def test_overview_miss_then_hit(system, http, tenant):
    t = await tenant()
    miss = await http.get(OVERVIEW, params={"days": "7", "timezone": "UTC"}, headers=t.headers)
    assert miss.status_code == 200, miss.text
    assert miss.headers["x-cache"] == "MISS"
    hit = await http.get(OVERVIEW, params={"timezone": "UTC", "days": "07"}, headers=t.headers)
    assert hit.status_code == 200
    assert hit.headers["x-cache"] == "HIT"
    assert hit.content == miss.content
    assert hit.headers["x-request-id"] != miss.headers["x-request-id"]


async def test_revoked_key_gets_401_not_a_hit(system, http, pg, tenant):
    t = await tenant()
    key = await credentials.create_api_key(pg, t.workspace_id, ["analytics:read"])
    headers = {"Authorization": f"Bearer {key['key']}"}
    assert (await http.get(OVERVIEW, params=DAY, headers=headers)).headers["x-cache"] == "MISS"
    assert (await http.get(OVERVIEW, params=DAY, headers=headers)).headers["x-cache"] == "HIT"
    await credentials.revoke_api_key(pg, key["id"])
    await asyncio.sleep(system.settings.auth_cache_seconds + 0.2)
    refused = await http.get(OVERVIEW, params=DAY, headers=headers)
    assert refused.status_code == 401, refused.text
    assert refused.headers.get("x-cache") != "HIT"
    # The workspace's other key is authorized (by the gateway's check, without the query) and
    # shares the snapshot.
    assert (await http.get(OVERVIEW, params=DAY, headers=t.headers)).headers["x-cache"] == "HIT"
    assert (await http.get(OVERVIEW, params=DAY, headers=t.headers)).headers["x-cache"] == "HIT"


async def test_key_without_analytics_read_never_gets_a_hit(system, http, pg, tenant):
    t = await tenant()
    await http.get(OVERVIEW, params=DAY, headers=t.headers)
    assert (await http.get(OVERVIEW, params=DAY, headers=t.headers)).headers["x-cache"] == "HIT"
    writer = await credentials.create_api_key(pg, t.workspace_id, ["events:write"])
    for _ in range(3):
        r = await http.get(
            OVERVIEW, params=DAY, headers={"Authorization": f"Bearer {writer['key']}"}
        )
        assert r.status_code == 403, r.text
        assert r.headers.get("x-cache") != "HIT"


async def test_other_workspace_never_gets_a_snapshot(system, http, tenant):
    a = await tenant()
    b = await tenant()
    r = await http.post(
        "/api/track/click",
        json={"linkId": a.link_ids[0], "timestamp": "2026-06-01T10:00:00Z"},
        headers=a.headers,
    )
    assert r.status_code == 200, r.text
    for _ in range(2):
        got_a = await http.get(OVERVIEW, params=DAY, headers=a.headers)
        assert got_a.json()["data"]["totals"]["clicks"] == 1
    assert got_a.headers["x-cache"] == "HIT"
    got_b = await http.get(OVERVIEW, params=DAY, headers=b.headers)
    assert got_b.headers["x-cache"] == "MISS"
    assert got_b.json()["data"]["totals"]["clicks"] == 0


async def test_services_name_the_authorized_workspace(system, tenant):
    t = await tenant()
    async with system.channel("query") as channel:
        call = protos.query_pb2_grpc.QueryServiceStub(channel).GetWorkspaceOverview(
            protos.common_pb2.AnalyticsQuery(days=1), metadata=t.metadata
        )
        await call
        trailers = dict(await call.trailing_metadata())
    assert trailers[WORKSPACE_TRAILER] == str(t.workspace_id)
