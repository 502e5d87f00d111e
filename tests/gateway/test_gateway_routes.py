"""The route table derived from the descriptors covers the seed and matches in the right order."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from google.api import annotations_pb2
from starlette.routing import Match

from gateway.app import create_app
from services import protos
from services.config import Settings
from services.contract.compiled import contract
from services.contract.paths import match_order_key, parse_template, starlette_path
from services.contract.routes import Streaming
from tests.seed_routes import SEED_000, seed_routes

# The seed lives beside the repository in the workspace, not in CI's clone.
SEED = Path(__file__).resolve().parents[3] / "shared" / "seeds" / "000_e24db8466b685e5d.txt"
_SEED_LINE = re.compile(r"^\s*•\s*(GET|POST|PUT|PATCH|DELETE) (/api/analytics\S*)\s*$")
SEED_ROUTES = [f"{method} {path}" for method, path in seed_routes()]


@pytest.fixture(scope="module")
def table():
    return {route.key: route for route in contract().routes}


@pytest.fixture(scope="module")
def app():
    return create_app(Settings())


def test_embedded_list_is_the_seed() -> None:
    if not SEED.exists():
        pytest.skip(f"{SEED} not present")
    listed = []
    for line in SEED.read_text(encoding="utf-8").splitlines():
        match = _SEED_LINE.match(line)
        if match:
            listed.append(f"{match.group(1)} {match.group(2)}")
    assert listed == SEED_000.strip().splitlines()


@pytest.mark.parametrize("seed_route", SEED_ROUTES)
def test_every_seed_route_is_served(table, seed_route: str) -> None:
    assert seed_route in table


def test_seed_004_route(table) -> None:
    route = table["POST /v1/analytics"]
    assert route.grpc_path == "/linkpulse.v1.QueryService/GetRawEvents"
    assert route.body == "*"
    assert route.options.envelope == protos.options_pb2.ENVELOPE_STATUS_CODE
    assert route.options.proto_field_names
    assert route.request_class is protos.query_pb2.RawEventsRequest
    assert route.response_class is protos.query_pb2.RawEventsResponse


def test_records_carry_descriptor_facts(table) -> None:
    overview = table["GET /api/analytics/workspace/overview"]
    assert overview.service == "query"
    assert overview.grpc_path == "/linkpulse.v1.QueryService/GetWorkspaceOverview"
    assert overview.request_class is protos.common_pb2.AnalyticsQuery
    assert overview.response_class is protos.common_pb2.OverviewResponse
    assert overview.streaming is Streaming.UNARY
    assert overview.options.scope == "analytics:read" and overview.options.cacheable
    assert table["GET /api/analytics/embed"].options.public
    live = table["GET /api/analytics/live/ws"]
    assert live.streaming is Streaming.SERVER and live.is_websocket
    assert table["GET /api/analytics/export"].returns_http_body
    assert table["GET /api/analytics/audit-log"].options.scope == "workspace:update"


def test_table_is_exactly_the_annotated_methods(table) -> None:
    expected = set()
    for module, _grpc, name in protos.SERVICE_MODULES.values():
        for method in module.DESCRIPTOR.services_by_name[name].methods:
            rule = method.GetOptions().Extensions[annotations_pb2.http]
            verb = rule.WhichOneof("pattern")
            if verb:
                expected.add(f"{verb.upper()} {getattr(rule, verb)}")
    assert set(table) == expected


def test_integer_path_variables_use_the_int_convertor(table) -> None:
    assert table["GET /api/analytics/{link_id}/timeseries"].path == (
        "/api/analytics/{link_id:int}/timeseries"
    )
    assert table["GET /api/analytics/{link_id}/rules/{rule_id}/conditions"].path == (
        "/api/analytics/{link_id:int}/rules/{rule_id:int}/conditions"
    )
    assert table["GET /api/analytics/exports/{id}"].path == "/api/analytics/exports/{id}"


def test_literal_routes_come_before_templated_ones() -> None:
    order = [route.key for route in contract().routes]
    for literal in ("workspace/timeseries", "leads/timeseries", "sales/timeseries"):
        assert order.index(f"GET /api/analytics/{literal}") < order.index(
            "GET /api/analytics/{link_id}/timeseries"
        )
    keys = [match_order_key(parse_template(t)) for t in ("/a/{x}/b", "/a/lit/b", "/a/{x=**}")]
    assert sorted(keys) == [keys[1], keys[0], keys[2]]


def _matched(app, method: str, path: str) -> str | None:
    scope = {"type": "http", "method": method, "path": path, "root_path": ""}
    for route in app.routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return route.name
    return None


@pytest.mark.parametrize(
    ("path", "rpc"),
    [
        ("/api/analytics/workspace/timeseries", "GetWorkspaceTimeseries"),
        ("/api/analytics/42/timeseries", "GetLinkTimeseries"),
        ("/api/analytics/leads/timeseries", "GetLeadsTimeseries"),
        ("/api/analytics/sales/breakdown", "GetSalesBreakdown"),
        ("/api/analytics/42/rules", "GetLinkRules"),
        ("/api/analytics/42/rules/7/conditions", "GetLinkRuleConditions"),
        ("/api/analytics/live/stats", "GetLiveStats"),
        ("/api/analytics/exports/job_1", "GetExport"),
    ],
)
def test_starlette_matches_the_right_rpc(app, path: str, rpc: str) -> None:
    assert _matched(app, "GET", path) == rpc


def test_same_path_different_methods(app) -> None:
    assert _matched(app, "GET", "/api/analytics/exports") == "ListExports"
    assert _matched(app, "POST", "/api/analytics/exports") == "CreateExport"


def test_unsupported_templates_are_refused() -> None:
    with pytest.raises(ValueError):
        parse_template("/v1/{name=things/*}")
    with pytest.raises(ValueError):
        parse_template("no/leading/slash")
    template = parse_template("/v1/{a.b}/{rest=**}")
    assert starlette_path(template, {}) == "/v1/{a__b}/{rest:path}"
