"""Rate limits end to end: a key's plan allows a minute of requests, then 429 with Retry-After
and X-RateLimit-* headers; cached answers count; other keys are untouched; it recovers."""

from __future__ import annotations

import asyncio

from services.admin import credentials

FREE_PER_MINUTE = 60  # the free plan's requests_per_minute


async def _until_refused(http, path: str, headers: dict[str, str], most: int) -> list:
    answers = []
    for _ in range(most):
        r = await http.get(path, headers=headers)
        answers.append(r)
        if r.status_code == 429:
            break
    return answers


async def test_limit_trips_with_headers_and_recovers(http, tenant, pg) -> None:
    t = await tenant(plan="free")
    answers = await _until_refused(http, "/api/analytics/live", t.headers, FREE_PER_MINUTE + 20)
    refused = answers[-1]
    assert refused.status_code == 429, [a.status_code for a in answers]
    served = answers[:-1]
    assert len(served) >= FREE_PER_MINUTE and all(a.status_code == 200 for a in served)
    first = served[0].headers
    assert first["x-ratelimit-limit"] == str(FREE_PER_MINUTE)
    assert int(first["x-ratelimit-remaining"]) == FREE_PER_MINUTE - 1
    assert int(served[1].headers["x-ratelimit-remaining"]) < int(first["x-ratelimit-remaining"])
    assert refused.json()["error"]["code"] == "rate_limited"
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["x-ratelimit-remaining"] == "0"
    assert int(refused.headers["x-ratelimit-reset"]) >= 1

    # another key of the same workspace has its own bucket
    other = await credentials.create_api_key(pg, t.workspace_id, ["analytics:read"])
    r = await http.get("/api/analytics/live", headers={"Authorization": f"Bearer {other['key']}"})
    assert r.status_code == 200

    await asyncio.sleep(int(refused.headers["retry-after"]) + 0.2)
    assert (await http.get("/api/analytics/live", headers=t.headers)).status_code == 200


async def test_cached_answers_spend_the_same_bucket(http, tenant) -> None:
    t = await tenant(plan="free")
    path = "/api/analytics/workspace/overview?days=7"
    first = await http.get(path, headers=t.headers)
    hit = await http.get(path, headers=t.headers)
    assert (first.headers["x-cache"], hit.headers["x-cache"]) == ("MISS", "HIT")
    assert int(hit.headers["x-ratelimit-remaining"]) < int(first.headers["x-ratelimit-remaining"])
    answers = await _until_refused(http, path, t.headers, FREE_PER_MINUTE + 20)
    assert answers[-1].status_code == 429
    assert answers[-2].headers.get("x-cache") == "HIT"
    assert answers[-1].json()["error"]["code"] == "rate_limited"
