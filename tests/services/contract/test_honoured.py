"""The parameters each RPC honours, declared once in the contract, and the refusal of the rest."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from services import protos
from services.contract.compiled import contract
from services.contract.honoured import honoured_fields, refuse_unhonoured
from services.errors import ApiError

QUERY = "linkpulse.v1.QueryService"
ANALYTICS_QUERY = "linkpulse.v1.AnalyticsQuery"
WINDOW = {"days", "start", "end", "timezone"}
SCOPE = {"campaign_id", "link_id", "folder_id", "tag_id"}
FILTERS = {"country", "device", "browser", "os", "trigger", "referrer", "continent"}
SHARED = WINDOW | SCOPE | FILTERS | {"include_bots"}
TOTALS = SHARED | {"currency"}
SERIES = TOTALS | {"granularity"}
ROWS = TOTALS | {"limit"}
# The audit of services/query/handlers.py: what each RPC's handler reads from the request.
HONOURED: dict[str, set[str]] = {
    "GetWorkspaceOverview": TOTALS,
    "GetWorkspaceTimeseries": SERIES,
    "GetWorkspaceRegions": ROWS,
    "GetWorkspaceContinents": ROWS,
    "GetWorkspaceDevices": ROWS | {"by"},
    "GetWorkspaceTriggers": ROWS,
    "GetWorkspaceTopFolders": ROWS | {"sort"},
    "GetWorkspaceTopTags": ROWS | {"sort"},
    "GetCampaignRanking": ROWS | {"sort"},
    "GetWorkspaceBudgets": WINDOW | {"campaign_id", "currency"},
    "GetWorkspaceUsage": set(),
    "GetLinkSummary": TOTALS,
    "GetLinkTimeseries": SERIES,
    "GetLinkGeo": ROWS,
    "GetLinkCities": ROWS,
    "GetLinkRegions": ROWS,
    "GetLinkContinents": ROWS,
    "GetLinkDevices": ROWS | {"by"},
    "GetLinkReferrers": ROWS,
    "GetLinkTriggers": ROWS,
    "GetLinkRules": SHARED | {"limit"},
    "GetLinkRuleConditions": SHARED | {"limit", "rule_id"},
    "GetLinkTrafficFlow": SHARED | {"limit"},
    "GetLinkClickPaths": WINDOW | FILTERS | {"link_id", "include_bots", "limit", "session_minutes"},
    "GetOverview": TOTALS,
    "GetConversionDetails": SHARED | {"limit", "cursor"},
    "GetLeads": TOTALS,
    "GetLeadsTimeseries": SERIES,
    "GetLeadsBreakdown": ROWS | {"dimension"},
    "GetSales": TOTALS,
    "GetSalesTimeseries": SERIES,
    "GetSalesBreakdown": ROWS | {"dimension"},
    "GetComposite": SERIES | {"limit", "dimension"},
    "GetFunnel": SHARED,
}


def _set(message: Message, field: FieldDescriptor) -> None:
    """Give field a value that counts as set (not its default)."""
    value: Any = {
        FieldDescriptor.TYPE_BOOL: True,
        FieldDescriptor.TYPE_STRING: "x",
    }.get(field.type, 1)
    setattr(message, field.name, value)


def _query_methods() -> dict[str, Any]:
    return {
        m.method.name: m
        for m in contract().methods
        if m.descriptor.full_name == QUERY and m.method.input_type.full_name == ANALYTICS_QUERY
    }


def test_every_analytics_rpc_declares_what_it_honours() -> None:
    methods = _query_methods()
    assert set(methods) == set(HONOURED)
    for name, method in methods.items():
        assert method.honoured == HONOURED[name], name


def test_routes_carry_the_same_declaration() -> None:
    methods = _query_methods()
    for route in contract().routes:
        if route.rpc in methods and route.service == "query":
            assert route.honoured == methods[route.rpc].honoured


def test_rpcs_without_a_declaration_honour_everything() -> None:
    raw = contract().by_path[f"/{QUERY}/GetRawEvents"]
    assert raw.honoured is None
    raw.refuse_unhonoured(protos.query_pb2.RawEventsRequest(include_bots=True, limit=5))


@pytest.mark.parametrize("rpc", sorted(HONOURED))
def test_every_unhonoured_field_is_refused_by_name(rpc: str) -> None:
    method = contract().by_path[f"/{QUERY}/{rpc}"]
    descriptor = protos.common_pb2.AnalyticsQuery.DESCRIPTOR
    for field in descriptor.fields:
        request = protos.common_pb2.AnalyticsQuery()
        _set(request, field)
        if field.name in HONOURED[rpc]:
            method.refuse_unhonoured(request)
            continue
        with pytest.raises(ApiError) as refused:
            method.refuse_unhonoured(request)
        assert refused.value.field == field.json_name, (rpc, field.name)
        want = f"parameter '{field.json_name}' is not supported by this route"
        assert refused.value.message == want


def test_fields_of_a_flattened_message_are_parameters_of_the_route() -> None:
    embed = contract().by_path[f"/{QUERY}/GetEmbed"]
    assert embed.honoured == {"token", "days", "timezone", "granularity", "limit"}
    query = protos.common_pb2.AnalyticsQuery(days=3, timezone="UTC", granularity="day", limit=5)
    embed.refuse_unhonoured(protos.query_pb2.EmbedRequest(token="t", query=query))
    for extra in ({"campaign_id": 1}, {"country": "DE"}, {"start": "2026-01-01"}):
        asked = protos.common_pb2.AnalyticsQuery(days=3, **extra)
        with pytest.raises(ApiError) as refused:
            embed.refuse_unhonoured(protos.query_pb2.EmbedRequest(token="t", query=asked))
        assert refused.value.field == asked.DESCRIPTOR.fields_by_name[next(iter(extra))].json_name


def test_snake_case_routes_name_the_proto_field() -> None:
    request = protos.common_pb2.AnalyticsQuery(session_minutes=5)
    with pytest.raises(ApiError) as refused:
        refuse_unhonoured(request, frozenset(), proto_field_names=True)
    assert refused.value.field == "session_minutes"


def test_a_declared_name_must_be_a_field_or_a_group() -> None:
    method = protos.query_pb2.DESCRIPTOR.services_by_name["QueryService"].methods_by_name[
        "GetOverview"
    ]
    options = protos.options_pb2.RouteOptions(
        params=protos.options_pb2.RouteParams(honoured=["window", "colour"])
    )
    with pytest.raises(ValueError, match="'colour' is neither a field"):
        honoured_fields(method, options)
    options.params.honoured[:] = ["window", "sort"]
    assert honoured_fields(method, options) == frozenset(WINDOW | {"sort"})
    assert honoured_fields(method, protos.options_pb2.RouteOptions()) is None
