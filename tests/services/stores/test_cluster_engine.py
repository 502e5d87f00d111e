"""The engine through the cluster's Distributed tables: the e2e dataset in the single server and
in the cluster, and every statement every analytics route (click paths included) and the
raw-events route send answering the same on both, sharded by workspace and by event."""

from __future__ import annotations

import pytest

from services.auth import principal as principal_mod
from services.auth.resolver import TokenResolver
from services.errors import ApiError
from services.money import FxTable
from services.query.servicer import QueryServicer
from services.stores.deps import Deps
from services.stores.redisclient import create_redis
from tests.e2e import dataset as d
from tests.services.query.test_current_clickhouse import (
    KINDS,
    RecordingClickHouse,
    _Context,
    _requests,
    _rows,
    _same,
    _stored_columns,
)


@pytest.mark.parametrize("sharding", ["workspace", "event"])
async def test_every_route_answers_the_same_through_the_cluster(
    system, pg, ch, cluster_db, sharding
):
    await cluster_db.migrate(sharding)
    ds = await d.build(pg, ch)
    cluster_ch = cluster_db.client()
    redis = create_redis(system.settings.redis_url)
    recorder = RecordingClickHouse(ch)
    try:
        for kind in KINDS:
            columns = await _stored_columns(ch, kind)
            rows = await ch.fetch(
                f"SELECT {', '.join(columns)} FROM {kind} WHERE workspace_id = %(ws)s",
                {"ws": ds.ws.workspace_id},
            )
            assert rows
            await cluster_ch.insert(kind, columns, rows)
        deps = Deps(system.settings, pg, recorder, redis, FxTable(pg))
        servicer = QueryServicer(deps)
        token = principal_mod.bind(await TokenResolver(pg).resolve(ds.ws.key))
        try:
            for rpc, request in _requests(ds):
                try:
                    await getattr(servicer, rpc)(request, _Context())
                except ApiError:
                    continue  # a field this RPC does not take: another variant covers it
        finally:
            principal_mod.unbind(token)
        assert len(recorder.answers) > 200
        # Click paths: its visitor sample is a subquery of a Distributed table (GLOBAL IN).
        assert any(" GLOBAL IN " in sql and rows for sql, _, rows in recorder.answers)
        differences = []
        for sql, params, expected in recorder.answers:
            got = await cluster_ch.fetch(sql, params)
            ordered = " ORDER BY " in sql
            want, have = _rows(expected, ordered), _rows(got, ordered)
            same = len(want) == len(have) and all(
                _same(a, b) for a, b in zip(want, have, strict=True)
            )
            if not same:
                differences.append(f"{sql} {params}\n  single: {want[:5]}\n  cluster: {have[:5]}")
        assert differences == []
    finally:
        recorder.close()
        cluster_ch.close()
        await redis.aclose()
