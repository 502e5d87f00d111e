"""Short-lived live tokens: minted with analytics:read, read-only, one workspace, expiring,
ended by revoking their key; the WebSocket takes only them in its URL."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets

from services.admin import credentials

TOKEN_ROUTE = "/api/analytics/live/token"


def _ws(system, query: str) -> str:
    return system.gateway_url.replace("http://", "ws://") + f"/api/analytics/live/ws?{query}"


async def _mint(http, tenant, **body) -> dict:
    r = await http.post(TOKEN_ROUTE, json=body, headers=tenant.headers)
    assert r.status_code == 200, r.text
    return r.json()["data"]


async def _closed_with(url: str) -> tuple[int, dict]:
    async with websockets.connect(url) as socket:
        frame = json.loads(await socket.recv())
        with pytest.raises(websockets.ConnectionClosedError) as closed:
            await socket.recv()
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, frame


async def test_token_reads_its_own_workspace_only_and_cannot_write(system, http, tenant) -> None:
    a, b = await tenant(), await tenant()
    minted = await _mint(http, a, ttlSeconds=120)
    assert minted["token"].startswith("lpl_") and minted["expiresIn"] == 120
    bearer = {"Authorization": f"Bearer {minted['token']}"}
    async with websockets.connect(_ws(system, f"token={minted['token']}")) as feed:
        await asyncio.sleep(0.3)
        await http.post("/api/track/click", json={"linkId": b.link_ids[0]}, headers=b.headers)
        r = await http.post("/api/track/click", json={"linkId": a.link_ids[0]}, headers=a.headers)
        mine = int(r.json()["data"]["eventIds"][0])
        async with asyncio.timeout(10):
            while (frame := json.loads(await feed.recv())).get("type") == "heartbeat":
                pass
        assert int(frame["eventId"]) == mine
    listed = await http.get("/api/analytics/live", headers=bearer)
    assert [int(e["eventId"]) for e in listed.json()["data"]["events"]] == [mine]
    write = await http.post("/api/track/click", json={"linkId": a.link_ids[0]}, headers=bearer)
    assert write.status_code == 403 and write.json()["error"]["code"] == "insufficient_scope"
    other = await http.get(
        "/api/analytics/live", headers={**bearer, "X-Workspace-Id": str(b.workspace_id)}
    )
    assert other.status_code == 403


async def test_api_keys_expired_and_forged_tokens_are_refused_in_the_url(
    system, http, tenant
) -> None:
    a = await tenant()
    code, frame = await _closed_with(_ws(system, f"token={a.key}"))
    assert code == 4401 and frame["error"]["field"] == "token"
    short = await _mint(http, a, ttlSeconds=1)
    await asyncio.sleep(2.1)
    code, frame = await _closed_with(_ws(system, f"token={short['token']}"))
    assert code == 4401 and "expired" in frame["error"]["message"]
    forged = short["token"][:-3] + ("AAA" if not short["token"].endswith("AAA") else "BBB")
    code, _ = await _closed_with(_ws(system, f"token={forged}"))
    assert code == 4401


async def test_revoking_the_key_ends_its_tokens(system, http, tenant, pg) -> None:
    a = await tenant()
    minted = await _mint(http, a)
    key_id = await pg.fetchval("SELECT id FROM api_keys WHERE workspace_id = $1", a.workspace_id)
    await credentials.revoke_api_key(pg, key_id)
    r = await http.get(
        "/api/analytics/live", headers={"Authorization": f"Bearer {minted['token']}"}
    )
    assert r.status_code == 401


async def test_lifetime_is_validated_and_minting_needs_analytics_read(http, tenant) -> None:
    a = await tenant()
    r = await http.post(TOKEN_ROUTE, json={"ttlSeconds": 301}, headers=a.headers)
    assert r.status_code == 400 and r.json()["error"]["field"] == "ttl_seconds"
    writer = await tenant(scopes=("events:write",))
    r = await http.post(TOKEN_ROUTE, json={}, headers=writer.headers)
    assert r.status_code == 403
