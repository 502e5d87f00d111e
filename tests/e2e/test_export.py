"""Exports against the real system: inline answers, jobs on the session's arq worker, downloads."""

from __future__ import annotations

import asyncio
import csv
import gzip
import io
import os
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import orjson
import pytest

from services import protos
from services.auth.signing import signer
from services.devstack import processes
from services.export import download_links
from services.stores.clickhouse import ClickHouse

EXPORT = "/api/analytics/export"
EXPORTS = "/api/analytics/exports"
# The rows of the window: 2026-01-01 .. 2026-01-10 (exclusive end 2026-01-11) in UTC.
START, END = "2026-01-01", "2026-01-10"
T0 = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp())
SPAN = 10 * 86400
# Values a spreadsheet would run as formulas, and one with a line break.
TRICKY = ('=HYPERLINK("http://x")', "+41", "-2+3", "@SUM(A1)", "\tx", "two\nlines")


async def insert_clicks(
    ch: ClickHouse, workspace_id: int, link_ids: list[int], count: int, first_id: int, t0: int
) -> None:
    """count clicks over the ten days from t0, ids from first_id, every 13th a tricky referrer."""
    links_sql = "[" + ",".join(str(i) for i in link_ids) + "]"
    tricky = (
        "["
        + ",".join("'" + t.replace("\n", "\\n").replace("\t", "\\t") + "'" for t in TRICKY)
        + "]"
    )
    await ch.command(
        "INSERT INTO clicks (event_id, workspace_id, link_id, timestamp, country, region, city,"
        " continent, device, browser, os, referrer, referrer_url, trigger, visitor_id, rule_id,"
        " condition_id, destination_url, is_bot)"
        f" SELECT {first_id} + number, {workspace_id},"
        f" {links_sql}[number % {len(link_ids)} + 1],"
        f" toDateTime({t0} + intDiv(number * {SPAN}, {count})),"
        " ['DE', 'FR', 'US', 'BR'][number % 4 + 1], 'Region', 'City', 'EU',"
        " ['desktop', 'mobile'][number % 2 + 1], 'Chrome', 'Linux',"
        f" if(number % 13 = 0, {tricky}[intDiv(number, 13) % {len(TRICKY)} + 1], 'google.com'),"
        " 'https://google.com/?q=1', 'link', concat('v', toString(number % 5000)), 0, 0,"
        " 'https://example.com/landing', toUInt8(number % 50 = 0)"
        f" FROM system.numbers LIMIT {count}"
    )


async def expected(ch: ClickHouse, workspace_id: int, bots: bool = False) -> tuple[int, int]:
    """(count, sum of event ids) of the workspace's clicks in the window, as ClickHouse has them."""
    rows = await ch.fetch(
        "SELECT count(), sum(event_id) FROM clicks WHERE workspace_id = %(w)s"
        " AND timestamp >= toDateTime(%(s)s) AND timestamp < toDateTime(%(e)s)"
        + ("" if bots else " AND is_bot = 0"),
        {"w": workspace_id, "s": T0, "e": T0 + SPAN},
    )
    return int(rows[0][0]), int(rows[0][1])


def window(**extra: Any) -> dict[str, Any]:
    """Query parameters of the test window in UTC."""
    return {"start": START, "end": END, "timezone": "UTC", **extra}


def read_csv(data: bytes) -> list[dict[str, str]]:
    """Rows of a CSV document with a header line."""
    return list(csv.DictReader(io.StringIO(data.decode())))


async def wait_job(http, tenant, job_id: str, until=("succeeded",), seconds: float = 90) -> list:
    """Poll the job until its status is in until; every state seen, in order."""
    seen = []
    deadline = time.monotonic() + seconds
    while True:
        r = await http.get(f"{EXPORTS}/{job_id}", headers=tenant.headers)
        assert r.status_code == 200, r.text
        job = r.json()["data"]
        seen.append(job)
        if job["status"] in until:
            return seen
        assert job["status"] in ("queued", "running"), job
        assert time.monotonic() < deadline, f"export {job_id} still {job['status']}"
        await asyncio.sleep(0.2)


@pytest.fixture(scope="module")
async def large(system, pg, ch, tenant_factory_module):
    """A workspace with 200,000 clicks in the window, some outside it, and a neighbour's."""
    owner = await tenant_factory_module()
    neighbour = await tenant_factory_module()
    await insert_clicks(ch, owner.workspace_id, owner.link_ids, 200_000, 10_000_000, T0)
    await insert_clicks(ch, owner.workspace_id, owner.link_ids, 3_000, 20_000_000, T0 - SPAN)
    await insert_clicks(ch, neighbour.workspace_id, neighbour.link_ids, 5_000, 30_000_000, T0)
    return owner, neighbour


@pytest.fixture(scope="module")
def tenant_factory_module(pg):
    """Tenants for the module's shared fixtures."""
    from services.admin import credentials, tenants
    from services.admin import links as admin_links
    from tests.conftest import DEFAULT_SCOPES, Tenant

    async def make(plan: str = "business") -> Tenant:
        ws = await tenants.create_workspace(pg, "Export", plan=plan, timezone="UTC")
        key = await credentials.create_api_key(pg, ws["id"], list(DEFAULT_SCOPES))
        made = [
            await admin_links.create_link(
                pg, ws["id"], domain="x.lp", slug=f"x{ws['id']}-{i}", destination_url="https://e.x"
            )
            for i in range(2)
        ]
        return Tenant(ws["id"], key["key"], [m["id"] for m in made])

    return make


async def download(http, url: str) -> bytes:
    """The decompressed file behind a download link."""
    r = await http.get(url)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/gzip"
    assert "attachment" in r.headers["content-disposition"]
    return gzip.decompress(r.content)


async def test_small_export_answers_inline_with_formulas_neutralised(http, ch, tenant):
    t = await tenant()
    await insert_clicks(ch, t.workspace_id, t.link_ids, 400, 1_000, T0)
    params = window(
        dataset="clicks", columns="event_id,timestamp,referrer,link_id", includeBots="true"
    )
    r = await http.get(EXPORT, params=params, headers=t.headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert "x-cache" not in r.headers  # never cached
    rows = read_csv(r.content)
    assert len(rows) == 400 and list(rows[0]) == ["event_id", "timestamp", "referrer", "link_id"]
    assert sorted(int(row["event_id"]) for row in rows) == list(range(1_000, 1_400))
    assert rows[0]["timestamp"].endswith("Z") and rows[0]["timestamp"].startswith("2026-01-")
    referrers = {row["referrer"] for row in rows}
    assert '\'=HYPERLINK("http://x")' in referrers and "'+41" in referrers
    assert "'-2+3" in referrers and "'@SUM(A1)" in referrers and "'\tx" in referrers
    assert "two lines" in referrers
    assert not any(v.startswith(("=", "+", "-", "@")) for v in referrers)
    # Bots are left out unless asked for, like every route.
    r = await http.get(EXPORT, params=window(dataset="clicks"), headers=t.headers)
    assert len(read_csv(r.content)) == 400 - 8


async def test_ndjson_and_aggregated_datasets_inline(http, ch, tenant):
    t = await tenant()
    await insert_clicks(ch, t.workspace_id, t.link_ids, 100, 5_000, T0)
    r = await http.get(EXPORT, params=window(dataset="clicks", format="ndjson"), headers=t.headers)
    assert r.status_code == 200 and r.headers["content-type"] == "application/x-ndjson"
    rows = [orjson.loads(line) for line in r.content.splitlines()]
    assert len(rows) == 98 and isinstance(rows[0]["event_id"], int)
    assert "two\nlines" in {row["referrer"] for row in rows}  # JSON keeps values as they are

    r = await http.get(
        EXPORT, params=window(dataset="timeseries", granularity="day"), headers=t.headers
    )
    series = read_csv(r.content)
    route = await http.get(
        "/api/analytics/workspace/timeseries", params=window(granularity="day"), headers=t.headers
    )
    points = route.json()["data"]["points"]
    assert [row["time"] for row in series] == [p["time"] for p in points]
    assert [int(row["clicks"]) for row in series] == [p["clicks"] for p in points]

    r = await http.get(
        EXPORT,
        params=window(dataset="breakdown", dimension="country", columns="key,clicks"),
        headers=t.headers,
    )
    assert {row["key"]: int(row["clicks"]) for row in read_csv(r.content)} == {
        "DE": 24, "FR": 25, "US": 24, "BR": 25,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"dataset": "passwords"}, "dataset"),
        ({"format": "xlsx"}, "format"),
        ({"columns": "event_id,secret"}, "columns"),
        ({"dataset": "timeseries", "columns": "event_id"}, "columns"),
        ({"days": "abc"}, "days"),
        ({"timezone": "Mars/Base"}, "timezone"),
        ({"sneaky": "1"}, "sneaky"),
    ],
)
async def test_bad_parameters_are_400_naming_them(http, tenant, params, field):
    t = await tenant()
    r = await http.get(EXPORT, params=params, headers=t.headers)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["field"] == field
    r = await http.post(EXPORTS, params=params, headers=t.headers)
    assert r.status_code == 400 and r.json()["error"]["field"] == field


async def test_large_export_runs_as_a_job_with_exact_rows(http, ch, system, large):
    owner, _ = large
    r = await http.get(EXPORT, params=window(dataset="clicks"), headers=owner.headers)
    assert r.status_code == 202, r.text
    job = r.json()["data"]
    assert job["status"] in ("queued", "running") and job["rowsEstimated"] == 196_000
    seen = await wait_job(http, owner, job["id"])
    done = seen[-1]
    progress = [s["progress"] for s in seen if s["status"] == "running"]
    assert any(0 < p < 1 for p in progress), progress  # progress moved while it ran
    assert progress == sorted(progress)
    count, id_sum = await expected(ch, owner.workspace_id)
    assert done["rowsWritten"] == count == 196_000 and done["progress"] == 1
    assert done["downloadUrl"].startswith(f"{EXPORTS}/{job['id']}/download?token=")
    rows = read_csv(await download(http, done["downloadUrl"]))
    ids = [int(row["event_id"]) for row in rows]
    assert len(ids) == count and len(set(ids)) == count and sum(ids) == id_sum
    # The stored file is the final one only: nothing temporary is left next to it.
    folder = Path(system.settings.export_path) / str(owner.workspace_id)
    assert [p.name for p in folder.iterdir()] == [f"{job['id']}.csv.gz"]
    assert done["sizeBytes"] == (folder / f"{job['id']}.csv.gz").stat().st_size


async def test_resubmitting_returns_the_job_in_flight(http, large):
    owner, _ = large
    body = {**window(), "dataset": "clicks", "columns": "event_id,country"}
    first = await http.post(EXPORTS, params=body, headers=owner.headers)
    again = await http.post(EXPORTS, params=body, headers=owner.headers)
    assert first.status_code == again.status_code == 202
    assert first.json()["data"]["id"] == again.json()["data"]["id"]
    seen = await wait_job(http, owner, first.json()["data"]["id"])
    assert seen[-1]["rowsWritten"] == 196_000
    listed = await http.get(EXPORTS, params={"limit": 100}, headers=owner.headers)
    assert first.json()["data"]["id"] in [j["id"] for j in listed.json()["data"]["jobs"]]


async def test_a_killed_worker_job_completes_on_retry(http, ch, system, large):
    owner, _ = large
    body = {**window(), "dataset": "clicks", "format": "ndjson"}  # every column: ~40 MB
    r = await http.post(EXPORTS, params=body, headers=owner.headers)
    job_id = r.json()["data"]["id"]
    deadline = time.monotonic() + 60
    while True:  # wait until the worker is writing the file
        job = (await http.get(f"{EXPORTS}/{job_id}", headers=owner.headers)).json()["data"]
        if job["status"] == "running" and job["rowsWritten"] > 0:
            break
        assert job["status"] in ("queued", "running") and time.monotonic() < deadline, job
        await asyncio.sleep(0.1)
    spec = system.specs["worker"]
    pid = processes.running_pid(spec)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    await asyncio.sleep(0.5)
    folder = Path(system.settings.export_path) / str(owner.workspace_id)
    assert not (folder / f"{job_id}.ndjson.gz").exists()  # no partial file under the final name
    processes.start(spec)
    seen = await wait_job(http, owner, job_id, seconds=120)
    done = seen[-1]
    count, id_sum = await expected(ch, owner.workspace_id)
    assert done["rowsWritten"] == count
    data = await download(http, done["downloadUrl"])
    ids = [orjson.loads(line)["event_id"] for line in data.splitlines()]
    assert len(ids) == count and len(set(ids)) == count and sum(ids) == id_sum
    attempts = await system_attempts(system, job_id)
    assert attempts >= 2
    assert not list(folder.glob(f".{job_id}.*"))


async def system_attempts(system, job_id: str) -> int:
    """How many runs an export took, from PostgreSQL."""
    import asyncpg

    conn = await asyncpg.connect(system.settings.database_url)
    try:
        return int(await conn.fetchval("SELECT attempt FROM export_jobs WHERE id = $1", job_id))
    finally:
        await conn.close()


async def test_cancel_stops_a_job_and_keeps_no_file(http, system, large):
    owner, _ = large
    body = {**window(), "dataset": "clicks", "columns": "event_id,os"}
    job_id = (await http.post(EXPORTS, params=body, headers=owner.headers)).json()["data"]["id"]
    r = await http.post(f"{EXPORTS}/{job_id}/cancel", headers=owner.headers)
    assert r.status_code == 200 and r.json()["data"]["status"] == "cancelled"
    await asyncio.sleep(3)
    job = (await http.get(f"{EXPORTS}/{job_id}", headers=owner.headers)).json()["data"]
    assert job["status"] == "cancelled" and job["downloadUrl"] is None
    folder = Path(system.settings.export_path) / str(owner.workspace_id)
    assert not list(folder.glob(f"*{job_id}*"))


async def test_links_expire_and_bind_to_their_job(http, system, large):
    owner, neighbour = large
    body = {**window(), "dataset": "clicks", "columns": "event_id"}
    job_id = (await http.post(EXPORTS, params=body, headers=owner.headers)).json()["data"]["id"]
    done = (await wait_job(http, owner, job_id))[-1]
    assert (await http.get(done["downloadUrl"])).status_code == 200  # no bearer token needed
    sign = signer(system.settings)
    expired, _ = download_links.sign(sign, owner.workspace_id, job_id, ttl_seconds=-1)
    r = await http.get(expired)
    assert r.status_code == 401 and "expired" in r.json()["error"]["message"]
    tampered = done["downloadUrl"][:-3] + (
        "AAA" if not done["downloadUrl"].endswith("AAA") else "BBB"
    )
    assert (await http.get(tampered)).status_code == 401
    assert (await http.get(f"{EXPORTS}/{job_id}/download")).status_code == 401
    # A valid token for another job does not open this one.
    other, _ = download_links.sign(sign, owner.workspace_id, "exp_other", 60)
    token = other.split("token=", 1)[1]
    assert (
        await http.get(f"{EXPORTS}/{job_id}/download", params={"token": token})
    ).status_code == 401
    # A token signed for the neighbour's workspace never reaches the owner's file.
    forged, _ = download_links.sign(sign, neighbour.workspace_id, job_id, 60)
    assert (await http.get(forged)).status_code == 404


async def test_another_workspace_never_reaches_a_job(http, large):
    owner, neighbour = large
    body = {**window(), "dataset": "clicks", "columns": "event_id,device"}
    job_id = (await http.post(EXPORTS, params=body, headers=owner.headers)).json()["data"]["id"]
    for call in (
        http.get(f"{EXPORTS}/{job_id}", headers=neighbour.headers),
        http.post(f"{EXPORTS}/{job_id}/cancel", headers=neighbour.headers),
    ):
        r = await call
        assert r.status_code == 404, r.text
    listed = await http.get(EXPORTS, params={"limit": 100}, headers=neighbour.headers)
    assert job_id not in [j["id"] for j in listed.json()["data"]["jobs"]]
    done = (await wait_job(http, owner, job_id))[-1]
    assert done["status"] == "succeeded"  # the neighbour's cancel did nothing
    # The neighbour's own export holds only its own rows.
    r = await http.get(
        EXPORT, params=window(dataset="clicks", columns="event_id"), headers=neighbour.headers
    )
    ids = [int(row["event_id"]) for row in read_csv(r.content)]
    assert ids and all(30_000_000 <= i < 30_005_000 for i in ids)


async def test_list_pages_with_a_cursor(http, tenant, ch):
    t = await tenant()
    made = []
    for columns in ("event_id", "event_id,os", "event_id,city"):
        body = {**window(), "dataset": "clicks", "columns": columns}
        made.append((await http.post(EXPORTS, params=body, headers=t.headers)).json()["data"]["id"])
    first = (await http.get(EXPORTS, params={"limit": 2}, headers=t.headers)).json()["data"]
    assert len(first["jobs"]) == 2 and first["nextCursor"]
    rest = await http.get(
        EXPORTS, params={"limit": 2, "cursor": first["nextCursor"]}, headers=t.headers
    )
    ids = [j["id"] for j in first["jobs"]] + [j["id"] for j in rest.json()["data"]["jobs"]]
    assert ids == made[::-1] and not rest.json()["data"]["nextCursor"]
    r = await http.get(EXPORTS, params={"cursor": "nonsense"}, headers=t.headers)
    assert r.status_code == 400 and r.json()["error"]["field"] == "cursor"


async def test_stream_export_to_grpc_callers(system, ch, tenant):
    t = await tenant()
    await insert_clicks(ch, t.workspace_id, t.link_ids, 250, 7_000, T0)
    async with system.channel("export") as channel:
        stub = protos.export_pb2_grpc.ExportServiceStub(channel)
        request = protos.export_pb2.ExportRequest(
            dataset="clicks", columns="event_id,country", query={"start": START, "end": END}
        )
        rows = [dict(row.values) async for row in stub.StreamExport(request, metadata=t.metadata)]
        assert len(rows) == 245 and {r["country"] for r in rows} == {"DE", "FR", "US", "BR"}
        assert sorted(int(r["event_id"]) for r in rows)[0] == 7_001
        with pytest.raises(grpc.aio.AioRpcError) as failure:
            async for _ in stub.StreamExport(request):
                pass
        assert failure.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_expired_files_are_purged(system, pg, tenant, http, ch):
    from services.stores.deps import Deps
    from workers.exports import purge_expired_exports

    t = await tenant()
    await insert_clicks(ch, t.workspace_id, t.link_ids, 50, 9_000, T0)
    body = {**window(), "dataset": "clicks"}
    job_id = (await http.post(EXPORTS, params=body, headers=t.headers)).json()["data"]["id"]
    done = (await wait_job(http, t, job_id))[-1]
    path = Path(system.settings.export_path) / str(t.workspace_id) / f"{job_id}.csv.gz"
    assert path.exists()
    await pg.execute(
        "UPDATE export_jobs SET expires_at = $2 WHERE id = $1",
        job_id,
        datetime.now(UTC) - timedelta(seconds=1),
    )
    deps = await Deps.open(system.settings)
    try:
        assert await purge_expired_exports({"deps": deps}) >= 1
    finally:
        await deps.close()
    assert not path.exists()
    assert (await http.get(done["downloadUrl"])).status_code == 404
    job = (await http.get(f"{EXPORTS}/{job_id}", headers=t.headers)).json()["data"]
    assert job["status"] == "succeeded" and job["downloadUrl"] is None


async def test_exports_are_in_the_audit_log(http, pg, tenant, ch):
    t = await tenant()
    await insert_clicks(ch, t.workspace_id, t.link_ids, 20, 11_000, T0)
    assert (await http.get(EXPORT, params=window(), headers=t.headers)).status_code == 200
    job_id = (await http.post(EXPORTS, params=window(), headers=t.headers)).json()["data"]["id"]
    done = (await wait_job(http, t, job_id))[-1]
    assert (await http.get(done["downloadUrl"])).status_code == 200
    rows = await pg.fetch(
        "SELECT action, target, actor FROM audit_log WHERE workspace_id = $1"
        " AND action LIKE 'export.%' ORDER BY seq",
        t.workspace_id,
    )
    entries = [(r["action"], r["target"]) for r in rows]
    assert entries == [
        ("export.created", "inline:clicks.csv"),
        ("export.created", f"export:{job_id}"),
        ("export.downloaded", f"export:{job_id}"),
    ]
    assert all(r["actor"].startswith("api_key:") for r in rows)
