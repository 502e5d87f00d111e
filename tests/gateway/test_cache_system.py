"""The snapshot cache of the running system (real services, PostgreSQL, Redis, ClickHouse):
concurrent identical requests computed once, an expired memo re-checked without the query."""

from __future__ import annotations

import asyncio
from collections import Counter

from services.admin import credentials

OVERVIEW = "/api/analytics/workspace/overview"
DAY = {"start": "2026-06-02", "end": "2026-06-02", "timezone": "UTC"}


async def test_concurrent_identical_requests_are_computed_once(system, http, tenant):
    t = await tenant()
    responses = await asyncio.gather(
        *(http.get(OVERVIEW, params=DAY, headers=t.headers) for _ in range(16))
    )
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    assert Counter(r.headers["x-cache"] for r in responses) == {"MISS": 1, "HIT": 15}
    assert len({r.content for r in responses}) == 1


async def test_an_expired_memo_is_rechecked_without_the_query(system, http, pg, tenant):
    t = await tenant()
    first = await http.get(OVERVIEW, params=DAY, headers=t.headers)
    assert first.headers["x-cache"] == "MISS"
    await asyncio.sleep(system.settings.auth_cache_seconds + 0.2)
    again = await http.get(OVERVIEW, params=DAY, headers=t.headers)
    assert again.headers["x-cache"] == "HIT"
    assert again.content == first.content
    # A new key of the workspace is confirmed the same way; a key without the route's scope is
    # left to the service, which refuses it.
    other = await credentials.create_api_key(pg, t.workspace_id, ["analytics:read"])
    shared = await http.get(
        OVERVIEW, params=DAY, headers={"Authorization": f"Bearer {other['key']}"}
    )
    assert shared.headers["x-cache"] == "HIT"
    writer = await credentials.create_api_key(pg, t.workspace_id, ["events:write"])
    refused = await http.get(
        OVERVIEW, params=DAY, headers={"Authorization": f"Bearer {writer['key']}"}
    )
    assert refused.status_code == 403


async def test_healthz_serves_the_last_check(system, http):
    answers = await asyncio.gather(*(http.get("/healthz") for _ in range(20)))
    for answer in answers:
        assert answer.status_code == 200
        data = answer.json()["data"]
        assert data["status"] == "ok"
        assert 0 <= data["ageSeconds"] < 5
