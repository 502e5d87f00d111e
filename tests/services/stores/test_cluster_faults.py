"""A node of the cluster down: a whole shard gives StoreUnavailable (never partial numbers),
one replica of a shard changes nothing for reads, inserts and the flusher's recheck."""

from __future__ import annotations

import asyncio
import time

import pytest

from services.errors import StoreUnavailable
from services.live.tables import CLICK_COLUMNS
from services.stores import clickhouse_http
from tests.services.stores.cluster_data import clicks, insert_clicks, replicated
from workers.cluster_recheck import stored_event_ids

COUNT_SQL = "SELECT count() FROM clicks"
# Workspaces whose clicks land on shard 1 and on shard 2 (cityHash64(w) % 2 + 1 is 1, 2).
WORKSPACES = (11, 13)


@pytest.fixture
def own_cluster(test_cluster):
    """The test cluster, when this session started it (nodes may be stopped)."""
    if not test_cluster.own:
        pytest.skip("the cluster is shared: its nodes are not stopped by these tests")
    return test_cluster


async def _answers(ch, seconds: float = 60) -> None:
    """Wait until a query through the Distributed tables answers again."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            await ch.fetch(COUNT_SQL)
            return
        except StoreUnavailable:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def _counts_at_least(ch, rows: int, seconds: float = 60) -> None:
    """Wait until the Distributed count reaches rows."""
    deadline = time.monotonic() + seconds
    while (count := (await ch.fetch(COUNT_SQL))[0][0]) < rows:
        assert time.monotonic() < deadline, f"{count} rows of {rows} after the restart"
        await asyncio.sleep(0.5)


def _csv(rows) -> bytes:
    lines = []
    for row in rows:
        values = dict(zip(CLICK_COLUMNS, row, strict=True))
        values["timestamp"] = values["timestamp"].strftime("%Y-%m-%d %H:%M:%S")
        lines.append(",".join(f'"{values[name]}"' for name in CLICK_COLUMNS))
    return ("\n".join(lines) + "\n").encode()


async def test_a_stopped_shard_gives_store_unavailable(own_cluster, cluster_db):
    await cluster_db.migrate()
    ch, nodes = cluster_db.client(), await cluster_db.nodes()
    first = own_cluster.layout.nodes[0]
    http_port = first.server.http_port
    try:
        for workspace in WORKSPACES:
            await insert_clicks(ch, clicks(workspace, 20, first_event=1000 * workspace))
        own_cluster.stop("ch3")
        own_cluster.stop("ch4")
        try:
            with pytest.raises(StoreUnavailable):
                await ch.fetch(COUNT_SQL)
            with pytest.raises(StoreUnavailable):
                await ch.fetch(
                    "SELECT visitor_id FROM clicks WHERE visitor_id GLOBAL IN"
                    " (SELECT visitor_id FROM clicks WHERE link_id = 1)"
                )
            with pytest.raises(StoreUnavailable):
                await insert_clicks(ch, clicks(15, 20, first_event=15000))
            # The flusher's insert (HTTP) and its recheck: retried, never half-answered.
            target = cluster_db.target.on(first.endpoint.connect_host, first.endpoint.port)
            with pytest.raises(StoreUnavailable):
                await asyncio.to_thread(
                    clickhouse_http.insert_csv, target, [(target.host, http_port)], "clicks",
                    CLICK_COLUMNS,
                    _csv(clicks(15, 5, first_event=15000)),
                )  # fmt: skip
            with pytest.raises(StoreUnavailable):
                await stored_event_ids(nodes, "clicks", [(11, 11000), (13, 13000)])
        finally:
            own_cluster.start("ch3")
            own_cluster.start("ch4")
        await _answers(ch)
        # Under heavy load a count right after the restart once held one shard's rows only:
        # the rows must all be back, within the wait.
        await _counts_at_least(ch, 40)
    finally:
        ch.close()
        nodes.close()


async def test_a_stopped_replica_changes_nothing(own_cluster, cluster_db):
    await cluster_db.migrate()
    ch, nodes = cluster_db.client(), await cluster_db.nodes()
    try:
        for workspace in WORKSPACES:
            await insert_clicks(ch, clicks(workspace, 20, first_event=1000 * workspace))
        await replicated(nodes, COUNT_SQL, {})
        own_cluster.stop("ch2")
        try:
            for _ in range(8):  # every entry node and replica choice the pool makes
                assert (await ch.fetch(COUNT_SQL))[0][0] == 40
            await insert_clicks(ch, clicks(11, 10, first_event=11500))
            await insert_clicks(ch, clicks(13, 10, first_event=13500))
            assert (await ch.fetch(COUNT_SQL))[0][0] == 60
            stored = await stored_event_ids(
                nodes, "clicks", [(11, 11000), (11, 11509), (13, 13509), (13, 99)]
            )
            assert stored == {(11, 11000), (11, 11509), (13, 13509)}
        finally:
            own_cluster.start("ch2")
        await replicated(nodes, COUNT_SQL, {}, seconds=60)
        assert (await ch.fetch(COUNT_SQL))[0][0] == 60
    finally:
        ch.close()
        nodes.close()
