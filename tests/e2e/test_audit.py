"""The audit log against the real system: what is recorded and by whom, filters and pages,
the scope it needs, and `audit verify` finding edited and deleted entries."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from typing import Any

import asyncpg
import grpc
import orjson
import pytest

from services import protos
from services.admin import credentials, tenants
from services.auditlog.recorder import record
from services.auth.tokens import token_hash
from tests.conftest import ROOT

AUDIT_LOG = "/api/analytics/audit-log"


async def key_id(pg, key: str) -> int:
    """The id of an API key."""
    return await pg.fetchval("SELECT id FROM api_keys WHERE key_hash = $1", token_hash(key))


async def entries(http, t, **params: Any) -> list[dict[str, Any]]:
    """Every entry of t's workspace through the REST route (all pages)."""
    found: list[dict[str, Any]] = []
    cursor = ""
    while True:
        query = {"limit": 100, **params, **({"cursor": cursor} if cursor else {})}
        r = await http.get(AUDIT_LOG, params=query, headers=t.headers)
        assert r.status_code == 200, r.text
        data = r.json()["data"]
        found += data.get("entries", [])
        cursor = data.get("nextCursor", "")
        if not cursor:
            return found


async def until(check, seconds: float = 5.0):  # noqa: ANN001, ANN201
    """Poll an async check until it returns something truthy."""
    deadline = time.monotonic() + seconds
    while True:
        value = await check()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.1)


def verify_cli(workspace_id: int) -> tuple[int, dict[str, Any]]:
    """Run `linkpulse audit verify` as a process; its exit status and JSON."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "services.cli.main",
            "audit",
            "verify",
            "--workspace",
            str(workspace_id),
        ],
        capture_output=True,
        cwd=ROOT,
        env=os.environ.copy(),
        timeout=60,
    )
    assert done.stdout, done.stderr.decode()
    return done.returncode, orjson.loads(done.stdout)


async def superuser_sql(pg: asyncpg.Pool, sql: str, *args: object) -> str:
    """Run sql bypassing the append-only trigger, as only a superuser can."""
    async with pg.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")
        return await conn.execute(sql, *args)


async def test_every_audited_action_appears_once_with_its_actor(system, http, pg, tenant):
    t = await tenant(plan="business")
    own_key = await key_id(pg, t.key)
    # API keys and sessions (created and revoked through the admin functions the CLI uses).
    key = await credentials.create_api_key(pg, t.workspace_id, ["audit:write"], actor="user:ann")
    other = await credentials.create_api_key(pg, t.workspace_id, ["analytics:read"])
    assert await credentials.revoke_api_key(pg, other["id"], actor="user:ann")
    assert not await credentials.revoke_api_key(pg, other["id"], actor="user:ann")  # no-op
    session = await credentials.create_session(
        pg, f"bob{t.workspace_id}@example.com", t.workspace_id, role="member", actor="user:bob"
    )
    assert await credentials.revoke_session(pg, session["id"], actor="user:bob")
    # Plan and feature changes.
    await tenants.set_plan(pg, t.workspace_id, "pro", actor="user:cy")
    await tenants.set_extra_features(pg, t.workspace_id, ["deep_links"], actor="user:cy")
    await tenants.set_extra_features(pg, t.workspace_id, [], actor="user:cy")
    # Embed tokens, over REST with the tenant's key: request id and address are recorded.
    r = await http.post(
        "/api/analytics/embed/tokens",
        json={"days": 7},
        headers={**t.headers, "X-Request-Id": "req-embed-1"},
    )
    assert r.status_code == 200, r.text
    embed_id = int(r.json()["data"]["id"])
    r = await http.delete(f"/api/analytics/embed/tokens/{embed_id}", headers=t.headers)
    assert r.status_code == 200 and r.json()["data"]["revokedAt"]
    # Denied requests: a missing scope and a feature the (now pro) plan lacks.
    reader = await credentials.create_api_key(pg, t.workspace_id, ["analytics:read"])
    reader_headers = {"Authorization": f"Bearer {reader['key']}", "X-Request-Id": "req-denied"}
    assert (await http.get(AUDIT_LOG, headers=reader_headers)).status_code == 403
    flow = f"/api/analytics/{t.link_ids[0]}/traffic-flow"
    r = await http.get(flow, headers=reader_headers)
    assert r.status_code == 403 and r.json()["error"]["code"] == "feature_not_enabled"
    # Another service's record through the Record RPC (actor given, else the caller's key).
    async with system.channel("audit") as channel:
        stub = protos.audit_pb2_grpc.AuditServiceStub(channel)
        metadata = (("authorization", f"Bearer {key['key']}"),)
        made = await stub.Record(
            protos.audit_pb2.RecordRequest(
                actor="user:dee", action="export.created", target="job:9"
            ),
            metadata=metadata,
        )
        assert made.actor == "user:dee" and len(made.hash) == 64
        made = await stub.Record(
            protos.audit_pb2.RecordRequest(action="batch.created", target="job:10"),
            metadata=metadata,
        )
        assert made.actor == f"api_key:{key['id']}"

    expected = {
        ("apikey.created", f"api_key:{own_key}", "success"): "system",
        ("apikey.created", f"api_key:{key['id']}", "success"): "user:ann",
        ("apikey.created", f"api_key:{other['id']}", "success"): "system",
        ("apikey.revoked", f"api_key:{other['id']}", "success"): "user:ann",
        ("apikey.created", f"api_key:{reader['id']}", "success"): "system",
        ("session.created", None, "success"): "user:bob",
        ("session.revoked", None, "success"): "user:bob",
        ("workspace.plan_changed", f"workspace:{t.workspace_id} plan:business->pro", "success"): (
            "user:cy"
        ),
        ("embed.created", None, "success"): f"api_key:{own_key}",
        ("embed.revoked", f"embed_token:{embed_id}", "success"): f"api_key:{own_key}",
        ("access.denied", "AuditService/ListAuditLog (insufficient_scope)", "denied"): (
            f"api_key:{reader['id']}"
        ),
        ("access.denied", "QueryService/GetLinkTrafficFlow (feature_not_enabled)", "denied"): (
            f"api_key:{reader['id']}"
        ),
        ("export.created", "job:9", "success"): "user:dee",
        ("batch.created", "job:10", "success"): f"api_key:{key['id']}",
    }

    async def complete() -> list[dict[str, Any]] | None:
        found = await entries(http, t)
        return found if sum(e["action"] == "access.denied" for e in found) >= 2 else None

    found = await until(complete)
    assert found, "the refusals were not recorded"
    for (action, target, outcome), actor in expected.items():
        matching = [
            e
            for e in found
            if e["action"] == action
            and e.get("outcome") == outcome
            and (target is None or e.get("target") == target)
        ]
        assert len(matching) == 1, (action, target, matching)
        assert matching[0]["actor"] == actor, (action, matching[0])
    features = [e for e in found if e["action"] == "workspace.features_changed"]
    assert [e["actor"] for e in features] == ["user:cy", "user:cy"]
    assert features[0]["requestId"] is None and features[0]["sourceAddress"] is None  # no request
    assert len(found) == len(expected) + 2  # nothing else, nothing twice
    embed_created = next(e for e in found if e["action"] == "embed.created")
    assert embed_created["requestId"] == "req-embed-1"
    assert embed_created["sourceAddress"] == "127.0.0.1"
    assert embed_created["target"].startswith(f"embed_token:{embed_id} workspace:")
    denied = [e for e in found if e["action"] == "access.denied"]
    assert {e["requestId"] for e in denied} == {"req-denied"}
    # Newest first, every entry with its time and chain hash.
    assert [int(e["id"]) for e in found] == sorted((int(e["id"]) for e in found), reverse=True)
    assert all(e["time"].endswith("Z") and len(e["hash"]) == 64 for e in found)
    assert verify_cli(t.workspace_id)[1]["ok"] is True


async def test_audit_log_needs_workspace_update(system, http, pg, tenant):
    t = await tenant(scopes=("analytics:read", "events:write"))
    r = await http.get(AUDIT_LOG, headers=t.headers)
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "insufficient_scope"
    assert "workspace:update" in r.json()["error"]["message"]
    assert (await http.get(AUDIT_LOG)).status_code == 401
    # Record needs audit:write.
    async with system.channel("audit") as channel:
        stub = protos.audit_pb2_grpc.AuditServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await stub.Record(protos.audit_pb2.RecordRequest(action="x"), metadata=t.metadata)
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_workspaces_see_only_their_own_log(system, http, pg, tenant):
    a, b = await tenant(), await tenant()
    await record(pg, workspace_id=b.workspace_id, actor="user:b", action="secret.b", target="x")
    assert not [e for e in await entries(http, a) if e["action"] == "secret.b"]
    assert [e["actor"] for e in await entries(http, b, action="secret.b")] == ["user:b"]


async def test_filters_and_pagination(system, http, pg, tenant):
    t = await tenant()
    ws = t.workspace_id
    for i in range(12):
        await record(
            pg,
            workspace_id=ws,
            actor=f"user:{i % 3}",
            action="thing.done" if i % 2 else "thing.undone",
            target=f"thing:{i}",
        )
    everything = await entries(http, t)
    assert len(everything) == 13  # the tenant's key creation and the 12
    by_actor = await entries(http, t, actor="user:1")
    assert [e["target"] for e in by_actor] == ["thing:10", "thing:7", "thing:4", "thing:1"]
    by_both = await entries(http, t, actor="user:1", action="thing.done")
    assert [e["target"] for e in by_both] == ["thing:7", "thing:1"]
    # Time range: start inclusive, end exclusive (date-times), from the entries' own times.
    things = [e for e in everything if e["target"].startswith("thing:")][::-1]  # oldest first
    start, end = things[3]["time"], things[7]["time"]
    ranged = await entries(http, t, start=start, end=end)
    assert [e["target"] for e in ranged] == ["thing:6", "thing:5", "thing:4", "thing:3"]
    today = things[0]["time"][:10]
    assert len(await entries(http, t, start=today, end=today)) == 13  # dates are whole days
    # Pages of 5: newest first, no entry twice, all of them.
    pages, cursor = [], ""
    while True:
        params: dict[str, Any] = {"limit": 5, **({"cursor": cursor} if cursor else {})}
        r = await http.get(AUDIT_LOG, params=params, headers=t.headers)
        data = r.json()["data"]
        pages.append([e["id"] for e in data["entries"]])
        cursor = data.get("nextCursor", "")
        if not cursor:
            break
    assert [len(p) for p in pages] == [5, 5, 3]
    assert [i for p in pages for i in p] == [e["id"] for e in everything]
    # Default page size and bad parameters.
    r = await http.get(AUDIT_LOG, headers=t.headers)
    assert len(r.json()["data"]["entries"]) == 13
    for bad in ({"limit": 0}, {"limit": 501}, {"cursor": "nope"}, {"start": "yesterday"}):
        r = await http.get(AUDIT_LOG, params=bad, headers=t.headers)
        assert r.status_code == 400, (bad, r.text)


async def test_concurrent_appends_make_one_chain(system, pg, tenant):
    t = await tenant()
    await asyncio.gather(
        *(
            record(pg, workspace_id=t.workspace_id, actor="user:x", action="burst", target=str(i))
            for i in range(30)
        )
    )
    seqs = [
        r["seq"]
        for r in await pg.fetch(
            "SELECT seq FROM audit_log WHERE workspace_id = $1 ORDER BY seq", t.workspace_id
        )
    ]
    assert seqs == list(range(1, 32))
    status, result = verify_cli(t.workspace_id)
    assert status == 0 and result["ok"] and result["checked"] == 31


async def test_the_app_cannot_change_the_log(system, pg, tenant):
    t = await tenant()
    with pytest.raises(asyncpg.PostgresError, match="append-only"):
        await pg.execute("UPDATE audit_log SET actor = 'x' WHERE workspace_id = $1", t.workspace_id)
    with pytest.raises(asyncpg.PostgresError, match="append-only"):
        await pg.execute("DELETE FROM audit_log WHERE workspace_id = $1", t.workspace_id)


async def test_verify_reports_an_edited_entry(system, pg, tenant):
    t = await tenant()
    for i in range(5):
        await record(pg, workspace_id=t.workspace_id, actor="user:e", action="a", target=str(i))
    assert verify_cli(t.workspace_id)[0] == 0
    entry_id = await pg.fetchval(
        "SELECT id FROM audit_log WHERE workspace_id = $1 AND seq = 3", t.workspace_id
    )
    await superuser_sql(pg, "UPDATE audit_log SET actor = 'user:mallory' WHERE id = $1", entry_id)
    status, result = verify_cli(t.workspace_id)
    assert status == 3 and result["ok"] is False
    problem = result["problem"]
    assert (problem["kind"], problem["seq"], problem["id"]) == ("altered", 3, entry_id)
    assert problem["entry"]["actor"] == "user:mallory"


async def test_verify_reports_a_deleted_entry(system, pg, tenant):
    t = await tenant()
    for i in range(5):
        await record(pg, workspace_id=t.workspace_id, actor="user:d", action="a", target=str(i))
    await superuser_sql(
        pg, "DELETE FROM audit_log WHERE workspace_id = $1 AND seq = 4", t.workspace_id
    )
    status, result = verify_cli(t.workspace_id)
    assert status == 3
    assert (result["problem"]["kind"], result["problem"]["seq"]) == ("removed", 4)
    # Removing the newest entries is caught against the chain head.
    u = await tenant()
    for i in range(3):
        await record(pg, workspace_id=u.workspace_id, actor="user:d", action="a", target=str(i))
    await superuser_sql(
        pg, "DELETE FROM audit_log WHERE workspace_id = $1 AND seq >= 3", u.workspace_id
    )
    status, result = verify_cli(u.workspace_id)
    assert status == 3
    assert (result["problem"]["kind"], result["problem"]["seq"]) == ("removed", 3)
