"""Copies of the services behind one gateway: calls reach every copy and go on when one copy of
a service is killed; exports written by one worker are downloaded through any export copy."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from services.auth import signing
from services.devstack import components
from services.ids import NODE_BITS, SEQUENCE_BITS
from tests.e2e.copies import Copies
from tests.e2e.test_export import EXPORT, T0, download, insert_clicks, read_csv, wait_job, window
from tests.ports import free_port


def _node(event_id: int) -> int:
    return (event_id >> SEQUENCE_BITS) & ((1 << NODE_BITS) - 1)


@pytest.fixture
def copies(system, tmp_path: Path) -> Iterator[Copies]:
    settings = replace(system.settings, run_dir=tmp_path / "run", gateway_port=free_port())
    started = Copies(settings, signing.load_secret(system.settings).decode())
    try:
        yield started
    finally:
        started.stop_all()


async def _track(client: httpx.AsyncClient, headers: dict[str, str], link_id: int) -> int:
    r = await client.post("/api/track/click", json={"linkId": link_id}, headers=headers)
    assert r.status_code == 200, r.text
    return int(r.json()["data"]["eventIds"][0])


async def _overview(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    r = await client.get("/api/analytics/workspace/overview", headers=headers)
    assert r.status_code == 200, r.text


async def test_calls_spread_over_copies_and_go_on_when_one_dies(system, copies, tenant) -> None:
    t = await tenant()
    query = [f"127.0.0.1:{free_port()}" for _ in range(2)]
    live = [f"127.0.0.1:{free_port()}" for _ in range(2)]
    copies.settings = replace(copies.settings, query_addr=",".join(query), live_addr=",".join(live))
    running = {
        (name, i): copies.start(name, f"{name}-{i}", listen=address)
        for name, addresses in (("query", query), ("live", live))
        for i, address in enumerate(addresses)
    }
    copies.start("gateway", "gateway-over-copies", SNAPSHOT_CACHE="off")
    url = components.gateway_url(copies.settings)
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        health = await client.get("/healthz")
        assert health.status_code == 200, health.text
        nodes = set()
        for _ in range(20):
            nodes.add(_node(await _track(client, t.headers, t.link_ids[0])))
            await _overview(client, t.headers)
        assert len(nodes) == 2, nodes  # each live copy minted some: both received calls

        copies.kill(running[("query", 0)])
        copies.kill(running[("live", 0)])
        await asyncio.sleep(0.5)
        after = set()
        for _ in range(20):
            after.add(_node(await _track(client, t.headers, t.link_ids[0])))
            await _overview(client, t.headers)
        assert len(after) == 1 and after < nodes, (after, nodes)
        health = await client.get("/healthz")
        assert health.status_code == 200, health.text
    await system.drained()


async def test_exports_on_a_shared_directory_download_from_any_copy(
    copies, tenant, ch, tmp_path: Path
) -> None:
    """The worker that writes an export and the export services that serve it run as on
    different hosts (a run directory each) and share only EXPORT_DIR."""
    t = await tenant()
    await insert_clicks(ch, t.workspace_id, t.link_ids, 500, 70_000_000, T0)
    shared = tmp_path / "shared-exports"
    export = [f"127.0.0.1:{free_port()}" for _ in range(2)]
    copies.settings = replace(copies.settings, export_addr=",".join(export))
    common = {"EXPORT_DIR": str(shared), "ARQ_QUEUE": f"lp:copies:{uuid.uuid4().hex}:arq"}
    hosts = {name: tmp_path / f"host-{name}" for name in ("export-0", "export-1", "worker")}
    for i, address in enumerate(export):
        copies.start(
            "export",
            f"export-{i}",
            listen=address,
            EXPORT_INLINE_ROWS="10",
            LINKPULSE_RUN_DIR=str(hosts[f"export-{i}"]),
            **common,
        )
    copies.start(
        "worker",
        "worker-elsewhere",
        WORKER_CRON="off",
        LINKPULSE_RUN_DIR=str(hosts["worker"]),
        **common,
    )
    copies.start("gateway", "gateway-over-exports", SNAPSHOT_CACHE="off")
    async with httpx.AsyncClient(base_url=components.gateway_url(copies.settings)) as client:
        r = await client.get(EXPORT, params=window(dataset="clicks"), headers=t.headers)
        assert r.status_code == 202, r.text
        job = r.json()["data"]
        done = (await wait_job(client, t, job["id"]))[-1]
        # Every copy serves the file the worker wrote (round_robin takes turns).
        for _ in range(4):
            rows = read_csv(await download(client, done["downloadUrl"]))
            assert len(rows) == done["rowsWritten"] > 0
    assert (shared / str(t.workspace_id) / f"{job['id']}.csv.gz").is_file()
    for host in hosts.values():
        assert not list(host.rglob("*.csv.gz")), f"an export file under {host}"
