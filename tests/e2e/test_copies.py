"""Two copies of the query and live services behind one gateway: calls reach both copies, and
go on when one copy of each is killed."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from services.auth import signing
from services.devstack import components
from services.ids import NODE_BITS, SEQUENCE_BITS
from tests.e2e.copies import Copies
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
