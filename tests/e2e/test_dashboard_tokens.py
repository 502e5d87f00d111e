"""Dashboard tokens against the real system: minted by route (workspace:update) and CLI, read
their workspace's analytics, a live-feed token and exports as a read-only principal, refused
(401) once revoked or expired, and audited."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.auth.signing import signer
from tests.e2e.cli import linkpulse

TOKENS = "/api/analytics/dashboard/tokens"
OVERVIEW = "/api/analytics/workspace/overview"


def bearer(token: str) -> dict[str, str]:
    """Headers sending token as the bearer."""
    return {"Authorization": f"Bearer {token}"}


async def mint(http, t, **body: Any) -> dict[str, Any]:
    """A new dashboard token of t's workspace through REST."""
    r = await http.post(TOKENS, json=body, headers=t.headers)
    assert r.status_code == 200, r.text
    return r.json()["data"]


async def until_refused(http, token: str, path: str = OVERVIEW) -> int:
    """The status of GET path with token once the auth cache (1 s in tests) has let it go."""
    status = 0
    for _ in range(40):
        status = (await http.get(path, headers=bearer(token))).status_code
        if status == 401:
            break
        await asyncio.sleep(0.1)
    return status


@pytest.fixture
async def clicked(http, tenant):  # noqa: ANN201
    """A workspace with 3 clicks from DE and 2 from FR, and another workspace's 4 clicks."""
    t = await tenant(links_count=2)
    other = await tenant(links_count=1)
    when = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    for link, country, times in ((t.link_ids[0], "DE", 3), (t.link_ids[1], "FR", 2)):
        for _ in range(times):
            r = await http.post(
                "/api/track/click",
                json={"linkId": link, "country": country, "timestamp": when},
                headers=t.headers,
            )
            assert r.status_code == 200, r.text
    for _ in range(4):
        r = await http.post(
            "/api/track/click",
            json={"linkId": other.link_ids[0], "country": "US", "timestamp": when},
            headers=other.headers,
        )
        assert r.status_code == 200, r.text
    return t


async def test_a_token_reads_its_workspace_and_writes_nothing(system, http, clicked):
    t = clicked
    made = await mint(http, t, ttlSeconds=3600, label="wall screen")
    token = made["token"]
    assert token.startswith("lpd_") and made["dashboardPath"] == f"/dashboard#token={token}"
    assert made["label"] == "wall screen" and made["createdBy"].startswith("api_key:")
    expires = datetime.fromisoformat(made["expiresAt"].replace("Z", "+00:00"))
    assert timedelta(minutes=59) < expires - datetime.now(UTC) <= timedelta(hours=1)

    # The analytics read routes answer exactly what the workspace's key gets.
    for path, params in (
        (OVERVIEW, {"days": 7}),
        ("/api/analytics/composite", {"days": 7, "dimension": "country"}),
        ("/api/analytics/workspace/timeseries", {"days": 7, "granularity": "day"}),
    ):
        mine = await http.get(path, params=params, headers=bearer(token))
        theirs = await http.get(path, params=params, headers=t.headers)
        assert mine.status_code == 200, mine.text
        assert mine.json()["data"] == theirs.json()["data"]
    # Served from the workspace's snapshot like a key's answer: the gateway's memo check knows
    # dashboard tokens.
    again = await http.get(OVERVIEW, params={"days": 7}, headers=bearer(token))
    assert again.headers["x-cache"] == "HIT", again.headers
    totals = again.json()
    assert totals["data"]["totals"]["clicks"] == 5
    rows = (
        await http.get(
            "/api/analytics/composite",
            params={"days": 7, "dimension": "country"},
            headers=bearer(token),
        )
    ).json()["data"]["rows"]
    assert {r["key"]: r["clicks"] for r in rows} == {"DE": 3, "FR": 2}

    # What the page needs besides: a live-feed token and an export job.
    r = await http.post("/api/analytics/live/token", json={}, headers=bearer(token))
    assert r.status_code == 200, r.text
    live = r.json()["data"]["token"]
    r = await http.get("/api/analytics/live/stats", headers=bearer(live))
    assert r.status_code == 200, r.text
    r = await http.post(
        "/api/analytics/exports", params={"days": 7, "dataset": "clicks"}, headers=bearer(token)
    )
    assert r.status_code == 202, r.text
    job = r.json()["data"]["id"]
    r = await http.get(f"/api/analytics/exports/{job}", headers=bearer(token))
    assert r.status_code == 200, r.text

    # What it does is audited under its own actor.
    log = await http.get("/api/analytics/audit-log", headers=t.headers)
    assert ("export.created", f"dashboard:{made['id']}") in {
        (e["action"], e["actor"]) for e in log.json()["data"]["entries"]
    }

    # Read-only: every write or administrative route is 403 naming its scope.
    for verb, path, body in (
        ("POST", "/api/track/click", {"linkId": t.link_ids[0]}),
        ("POST", TOKENS, {}),
        ("POST", "/api/analytics/embed/tokens", {}),
        ("GET", "/api/analytics/audit-log", None),
        ("DELETE", f"{TOKENS}/{made['id']}", None),
    ):
        r = await http.request(verb, path, json=body, headers=bearer(token))
        assert r.status_code == 403, (path, r.text)
        assert r.json()["error"]["code"] == "insufficient_scope"


async def test_revoked_expired_or_forged_tokens_are_401(system, http, pg, settings, clicked):
    t = clicked
    made = await mint(http, t, ttlSeconds=600)
    token = made["token"]
    assert (await http.get(OVERVIEW, params={"days": 7}, headers=bearer(token))).status_code == 200
    live = (await http.post("/api/analytics/live/token", json={}, headers=bearer(token))).json()[
        "data"
    ]["token"]

    # Revoked: the token and the live token it minted stop working.
    r = await http.delete(f"{TOKENS}/{made['id']}", headers=t.headers)
    assert r.status_code == 200 and r.json()["data"]["revokedAt"]
    assert await until_refused(http, token) == 401
    assert await until_refused(http, live, "/api/analytics/live/stats") == 401
    r = await http.get(OVERVIEW, params={"days": 7}, headers=bearer(token))
    assert "revoked or expired" in r.json()["error"]["message"]

    # Expired: by its row, and by its signed expiry.
    other = await mint(http, t, ttlSeconds=600)
    await pg.execute(
        "UPDATE dashboard_tokens SET expires_at = now() - interval '1 second' WHERE id = $1",
        int(other["id"]),
    )
    assert await until_refused(http, other["token"]) == 401
    fresh = await mint(http, t, ttlSeconds=600)
    keys = signer(settings)
    claims = {"did": int(fresh["id"]), "ws": t.workspace_id}
    expired = "lpd_" + keys.sign("dashboard", claims, -1)
    r = await http.get(OVERVIEW, params={"days": 7}, headers=bearer(expired))
    assert r.status_code == 401 and "expired" in r.json()["error"]["message"]

    # Forged: another purpose's signature, another workspace's claims, an altered signature.
    body, _, _ = fresh["token"].partition(".")
    for forged in (
        "lpd_" + keys.sign("embed", claims, 600),
        "lpd_" + keys.sign("dashboard", {"did": int(fresh["id"]), "ws": t.workspace_id + 1}, 600),
        f"{body}.AAAAAAAAAAAAAAAAAAAAAA",
        "lpd_x",
    ):
        r = await http.get(OVERVIEW, params={"days": 7}, headers=bearer(forged))
        assert r.status_code == 401, (forged, r.text)
    assert (await http.get(OVERVIEW, headers=bearer(fresh["token"]))).status_code == 200


async def test_listing_bounds_and_the_audit_log(system, http, tenant):
    t = await tenant()
    other = await tenant()
    reader = await tenant(scopes=("analytics:read",))
    r = await http.post(TOKENS, json={}, headers=reader.headers)
    assert r.status_code == 403 and r.json()["error"]["code"] == "insufficient_scope"
    for bad, field in (
        ({"ttlSeconds": 1}, "ttlSeconds"),
        ({"ttlSeconds": 10**9}, "ttlSeconds"),
        ({"label": "x" * 201}, "label"),
    ):
        r = await http.post(TOKENS, json=bad, headers=t.headers)
        assert r.status_code == 400, bad
        assert field.lower() in r.text.lower().replace("_", ""), r.text

    made = await mint(http, t)
    expires = datetime.fromisoformat(made["expiresAt"].replace("Z", "+00:00"))
    assert timedelta(days=6, hours=23) < expires - datetime.now(UTC) <= timedelta(days=7)
    listed = (await http.get(TOKENS, headers=t.headers)).json()["data"]["tokens"]
    assert [int(x["id"]) for x in listed] == [int(made["id"])]
    assert listed[0]["token"] is None and listed[0]["dashboardPath"] is None  # shown once only
    assert not (await http.get(TOKENS, headers=other.headers)).json()["data"]["tokens"]
    assert (await http.delete(f"{TOKENS}/{made['id']}", headers=other.headers)).status_code == 404
    r = await http.delete(f"{TOKENS}/{made['id']}", headers=t.headers)
    assert r.status_code == 200
    assert not (await http.get(TOKENS, headers=t.headers)).json()["data"]["tokens"]
    inactive = await http.get(TOKENS, params={"includeInactive": "true"}, headers=t.headers)
    assert inactive.json()["data"]["tokens"][0]["revokedAt"]

    log = await http.get("/api/analytics/audit-log", headers=t.headers)
    entries = [(e["action"], e["target"]) for e in log.json()["data"]["entries"]]
    assert ("dashboard.revoked", f"dashboard_token:{made['id']}") in entries
    assert any(
        a == "dashboard.created" and tg.startswith(f"dashboard_token:{made['id']} ")
        for a, tg in entries
    )


async def test_cli_links_lists_and_revokes(system, http, clicked):
    t = clicked
    made = linkpulse(
        "dashboard", "link", "--workspace", str(t.workspace_id), "--ttl", "2h",
        "--label", "office tv",
    )  # fmt: skip
    assert made["url"] == f"{system.gateway_url}/dashboard#token={made['token']}"
    expires = datetime.fromisoformat(made["expires_at"].replace("Z", "+00:00"))
    assert timedelta(hours=1.9) < expires - datetime.now(UTC) <= timedelta(hours=2)
    r = await http.get(OVERVIEW, params={"days": 7}, headers=bearer(made["token"]))
    assert r.status_code == 200 and r.json()["data"]["totals"]["clicks"] == 5
    listed = linkpulse("dashboard", "list", "--workspace", str(t.workspace_id))
    assert [(x["id"], x["label"]) for x in listed] == [(made["id"], "office tv")]
    assert "token" not in listed[0]
    assert linkpulse("dashboard", "revoke", "--id", str(made["id"]))["revoked_at"]
    assert await until_refused(http, made["token"]) == 401
    assert linkpulse("dashboard", "list", "--workspace", str(t.workspace_id)) == []
    log = await http.get("/api/analytics/audit-log", headers=t.headers)
    actions = {(e["action"], e["actor"].split(":")[0]) for e in log.json()["data"]["entries"]}
    assert {("dashboard.created", "cli"), ("dashboard.revoked", "cli")} <= actions
