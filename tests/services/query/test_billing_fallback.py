"""Usage while ClickHouse is down: its queries run in the workspace's zone, so the daily
aggregates (kept in that zone) answer it."""

from __future__ import annotations

import pytest

from services.auth.principal import Principal
from services.errors import ApiError
from services.query import billing
from services.query.aggregates import DailyAggregates
from services.query.executor import Executor
from services.stores.clickhouse import ClickHouse
from tests.ports import free_port
from tests.services.query.test_aggregates import NOW, ZONE, Dataset, data  # noqa: F401


def _principal(workspace_id: int) -> Principal:
    return Principal(
        actor="api_key:1",
        workspace_id=workspace_id,
        organization_id=1,
        workspace_ids=(workspace_id,),
        scopes=frozenset({"analytics:read"}),
        plan="business",
        features=frozenset(),
        max_days=1095,
        timezone=ZONE,
        currency="EUR",
    )


def _down_executor(pg) -> Executor:  # noqa: ANN001
    dead = ClickHouse.from_url(f"clickhouse://127.0.0.1:{free_port()}/default", pool_size=1)
    return Executor(dead, DailyAggregates(pg))


async def test_usage_during_an_outage_answers_in_the_workspace_zone(data: Dataset, pg, ch):  # noqa: F811
    principal = _principal(data.events.workspace_id)
    expected = await billing.usage(Executor(ch), pg, principal, now=NOW)
    down = _down_executor(pg)
    try:
        got = await billing.usage(down, pg, principal, now=NOW)
    except ApiError as refused:  # a reason of the aggregates, never a zone the workspace lacks
        assert "timezone UTC" not in refused.message, refused.message
        pytest.fail(f"usage was not answered from the aggregates: {refused.message}")
    assert down.sources.name == "aggregates"
    assert [(i.kind, i.used) for i in got.items] == [(i.kind, i.used) for i in expected.items]
