"""A parameter a route does not honour is a 400 naming it, over REST, in a batch and over gRPC."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import pytest

from services import protos
from tests.e2e.dataset import WINDOW, Dataset, get

API = "/api/analytics"
BATCH = "/api/analytics/batch"

# (route, extra parameters the route honours, the parameter it does not, its value); `{link}` and
# `{rule}` are the dataset's, values of the form `@name` one of its ids.
Case = tuple[str, dict[str, Any], str, str]
UNSUPPORTED: dict[str, Case] = {
    "sort-on-timeseries": ("workspace/timeseries", {}, "sort", "leads"),
    "by-on-overview": ("workspace/overview", {}, "by", "browser"),
    "session-minutes-on-a-breakdown": ("{link}/geo", {}, "sessionMinutes", "5"),
    "granularity-on-a-breakdown": ("workspace/regions", {}, "granularity", "day"),
    "limit-on-totals": ("overview", {}, "limit", "5"),
    "cursor-where-nothing-pages": ("workspace/top-tags", {}, "cursor", "abc"),
    "dimension-on-devices": ("workspace/devices", {}, "dimension", "country"),
    "sort-on-leads-breakdown": ("leads/breakdown", {}, "sort", "leads"),
    "rule-on-summary": ("{link}/summary", {}, "ruleId", "1"),
    "currency-on-funnel": ("funnel", {}, "currency", "USD"),
    "currency-on-details": ("conversions/details", {}, "currency", "USD"),
    "currency-on-rules": ("{link}/rules", {}, "currency", "USD"),
    "granularity-on-conditions": ("{link}/rules/{rule}/conditions", {}, "granularity", "day"),
    "currency-on-traffic-flow": ("{link}/traffic-flow", {}, "currency", "USD"),
    "campaign-on-click-paths": ("{link}/click-paths", {}, "campaignId", "@Spring"),
    "filter-on-budgets": ("workspace/budgets", {}, "country", "DE"),
    "bots-on-budgets": ("workspace/budgets", {}, "includeBots", "true"),
    "link-on-budgets": ("workspace/budgets", {}, "linkId", "@link"),
    "days-on-usage": ("workspace/usage", {}, "days", "7"),
    "timezone-on-usage": ("workspace/usage", {}, "timezone", "UTC"),
}


def _path(ds: Dataset, route: str) -> str:
    link = ds.link("spring-a")
    rule = next(r for r in ds.rules if r["link_id"] == link["id"])
    return f"{API}/{route.replace('{link}', str(link['id'])).replace('{rule}', str(rule['id']))}"


def _value(ds: Dataset, raw: str) -> str:
    if raw == "@link":
        return str(ds.link("spring-a")["id"])
    if raw.startswith("@"):
        return str(ds.campaigns[raw[1:]])
    return raw


def _params(ds: Dataset, route: str, extra: dict[str, Any]) -> dict[str, Any]:
    return {} if route == "workspace/usage" else {**WINDOW, **extra}


@pytest.mark.parametrize("case", UNSUPPORTED)
async def test_an_unhonoured_parameter_is_a_400_naming_it(http, ds, case):
    route, extra, name, raw = UNSUPPORTED[case]
    path, params = _path(ds, route), _params(ds, route, extra)
    await get(http, ds, path, params)  # fine without it
    body = await get(http, ds, path, {**params, name: _value(ds, raw)}, status=400)
    assert body["error"] == {
        "code": "invalid_argument",
        "message": f"parameter '{name}' is not supported by this route",
        "field": name,
    }


@pytest.mark.parametrize(
    ("params", "name"),
    [({"limit": "3"}, "limit"), ({"dimension": "country", "granularity": "day"}, "granularity")],
)
async def test_composite_honours_limit_only_per_dimension_and_granularity_only_per_bucket(
    http, ds, params, name
):
    body = await get(http, ds, f"{API}/composite", {**WINDOW, **params}, status=400)
    assert body["error"]["code"] == "invalid_argument" and body["error"]["field"] == name


async def test_a_batch_item_with_an_unhonoured_parameter_fails_alone(http, ds):
    items = [
        {"id": "bad", "route": f"{API}/workspace/timeseries", "params": {**WINDOW, "sort": "x"}},
        {"id": "fine", "route": f"{API}/workspace/timeseries", "params": WINDOW},
    ]
    r = await http.post(BATCH, json={"queries": items, "wait": True}, headers=ds.headers)
    assert r.status_code == 200, r.text
    results = {res["id"]: res for res in r.json()["data"]["results"]}
    assert results["bad"]["ok"] is False
    assert results["bad"]["error"]["code"] == "invalid_argument"
    assert results["bad"]["error"]["field"] == "sort"
    assert results["fine"]["ok"] is True


Call = Callable[[Any], Any]


async def test_grpc_callers_are_refused_the_same(system, ds):
    metadata = (("authorization", f"Bearer {ds.ws.key}"),)
    query = protos.common_pb2.AnalyticsQuery
    async with system.channel("query") as channel:
        stub = protos.query_pb2_grpc.QueryServiceStub(channel)
        calls: list[tuple[Call, Any, str]] = [
            (stub.GetWorkspaceTimeseries, query(days=7, sort="leads"), "sort"),
            (stub.GetWorkspaceOverview, query(days=7, granularity="day"), "granularity"),
            (stub.GetFunnel, query(days=7, limit=3), "limit"),
            (stub.GetWorkspaceUsage, query(include_bots=True), "includeBots"),
        ]
        for rpc, request, name in calls:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await rpc(request, metadata=metadata)
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert refused.value.details() == f"parameter '{name}' is not supported by this route"
        answer = await stub.GetWorkspaceTopTags(query(days=7, sort="revenue"), metadata=metadata)
        assert answer.dimension == "tag"
