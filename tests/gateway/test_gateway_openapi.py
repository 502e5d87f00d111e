"""The OpenAPI document: every route, resolvable components, envelopes, errors, comments."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from gateway.comments import load_comments
from gateway.openapi import build_openapi, summary_and_description
from services.codegen import DESCRIPTOR_SET
from services.contract.compiled import contract

ERRORS = ("400", "401", "403", "404", "429", "501", "503")


@pytest.fixture(scope="module")
def routes():
    return contract().routes


@pytest.fixture(scope="module")
def document(routes) -> dict[str, Any]:
    built = build_openapi(routes, contract().binders, load_comments(DESCRIPTOR_SET))
    return orjson.loads(orjson.dumps(built))  # valid JSON, and what clients see


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/")
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def test_every_route_is_documented(document, routes) -> None:
    assert document["openapi"] == "3.1.0"
    for route in routes:
        operation = document["paths"][route.openapi_path][route.http_method.lower()]
        assert operation["operationId"] == route.rpc
        assert operation["tags"] == [route.service]
    operation_ids = [
        op["operationId"] for item in document["paths"].values() for op in item.values()
    ]
    assert len(operation_ids) == len(set(operation_ids)) == len(routes)


def test_every_ref_resolves(document) -> None:
    refs = set(_refs(document))
    assert refs
    for ref in refs:
        assert _resolve(document, ref) is not None


def test_parameters(document) -> None:
    operation = document["paths"]["/api/analytics/{link_id}/rules/{rule_id}/conditions"]["get"]
    by_name = {p.get("name"): p for p in operation["parameters"] if "name" in p}
    assert by_name["link_id"]["in"] == "path" and by_name["link_id"]["required"] is True
    assert by_name["link_id"]["schema"] == {"type": "integer", "format": "int64"}
    assert by_name["days"]["in"] == "query" and by_name["days"]["required"] is False
    assert by_name["days"]["schema"]["type"] == "integer"
    assert "Date range" in by_name["days"]["description"]
    assert "campaign_id" in by_name["campaignId"]["description"]  # snake alias documented
    assert "linkId" not in by_name and "ruleId" not in by_name  # bound by the path
    export = document["paths"]["/api/analytics/export"]["get"]
    names = {p.get("name") for p in export["parameters"]}
    assert {"days", "campaignId", "dataset", "format", "columns"} <= names


def _query_names(document, path: str) -> set[str]:
    operation = document["paths"][path]["get"]
    return {p["name"] for p in operation["parameters"] if p.get("in") == "query"}


def test_only_the_parameters_a_route_honours_are_listed(document) -> None:
    window = {"days", "start", "end", "timezone"}
    series = _query_names(document, "/api/analytics/workspace/timeseries")
    assert window | {"granularity", "currency", "includeBots", "country", "linkId"} <= series
    assert not {"sort", "by", "limit", "cursor", "sessionMinutes", "dimension"} & series
    tags = _query_names(document, "/api/analytics/workspace/top-tags")
    assert {"sort", "limit", "currency"} <= tags and "granularity" not in tags
    paths = _query_names(document, "/api/analytics/{link_id}/click-paths")
    assert {"sessionMinutes", "limit", "includeBots", "country"} <= paths
    assert not {"campaignId", "currency", "granularity", "sort"} & paths
    budgets = _query_names(document, "/api/analytics/workspace/budgets")
    assert budgets == window | {"campaignId", "currency"}
    assert _query_names(document, "/api/analytics/workspace/usage") == set()
    funnel = _query_names(document, "/api/analytics/funnel")
    assert not {"currency", "limit", "granularity"} & funnel
    details = _query_names(document, "/api/analytics/conversions/details")
    assert {"cursor", "limit"} <= details and "currency" not in details
    embed = _query_names(document, "/api/analytics/embed")
    assert embed == {"token", "days", "timezone", "granularity", "limit"}


def test_component_schemas(document) -> None:
    schemas = document["components"]["schemas"]
    totals = schemas["Totals"]["properties"]
    assert totals["clicks"] == {"type": "integer", "format": "int64"}
    assert totals["revenue"]["type"] == "number"
    assert "major units" in totals["revenue"]["description"]
    timeseries = schemas["TimeseriesResponse"]["properties"]
    assert timeseries["points"] == {
        "type": "array",
        "items": {"$ref": "#/components/schemas/TimeseriesPoint"},
    }
    assert schemas["BatchItem"]["properties"]["params"]["additionalProperties"] == {
        "type": "string"
    }
    assert schemas["BatchItemResult"]["properties"]["data"]["type"] == "object"
    raw = schemas["RawClickEvent"]["properties"]
    assert "workspace_id" in raw and "url_slug" in raw  # proto_field_names route
    assert raw["is_bot"]["type"] == "boolean"
    assert "include_bots" in schemas["RawEventsRequest"]["properties"]
    sample = schemas["ResponseMeta"]["properties"]["sample"]
    assert sample["$ref"] == "#/components/schemas/Sample"
    assert set(schemas["Sample"]["properties"]) == {"unit", "sampled", "total", "fraction"}


def test_envelopes(document) -> None:
    overview = document["paths"]["/api/analytics/workspace/overview"]["get"]
    schema = overview["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema["required"] == ["success", "data"]
    assert schema["properties"]["data"] == {"$ref": "#/components/schemas/OverviewResponse"}
    for status in ERRORS:
        response = _resolve(document, overview["responses"][status]["$ref"])
        error_schema = response["content"]["application/json"]["schema"]
        assert error_schema == {"$ref": "#/components/schemas/ErrorEnvelope"}
    raw = document["paths"]["/v1/analytics"]["post"]
    raw_schema = raw["responses"]["200"]["content"]["application/json"]["schema"]
    assert raw_schema["allOf"][0]["required"] == ["success", "status_code", "message"]
    assert raw_schema["allOf"][1] == {"$ref": "#/components/schemas/RawEventsResponse"}
    assert raw["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/RawEventsRequest"
    }
    raw_error = _resolve(document, raw["responses"]["401"]["$ref"])
    assert raw_error["content"]["application/json"]["schema"]["$ref"].endswith(
        "StatusCodeErrorEnvelope"
    )


def test_security(document) -> None:
    assert document["security"] == [{"bearerAuth": []}]
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert document["paths"]["/api/analytics/embed"]["get"]["security"] == []
    assert "security" not in document["paths"]["/api/analytics/overview"]["get"]


def test_websocket_and_raw_body_routes(document) -> None:
    live = document["paths"]["/api/analytics/live/ws"]["get"]
    assert live["x-websocket"] is True
    assert "WebSocket" in live["description"]
    assert "101" in live["responses"]
    export = document["paths"]["/api/analytics/export"]["get"]
    assert "*/*" in export["responses"]["200"]["content"]


def test_descriptions_come_from_proto_comments(document) -> None:
    raw = document["paths"]["/v1/analytics"]["post"]
    # The first sentence of the RPC's comment is the summary, the rest the description.
    assert raw["summary"] == "Raw click events of a date range, cursor-paginated (seed 004)"
    assert raw["description"].startswith("Bot clicks only with\ninclude_bots.")
    for ops in document["paths"].values():
        for op in ops.values():
            assert op["summary"] and "`" not in op["summary"], op
    tags = {tag["name"]: tag.get("description", "") for tag in document["tags"]}
    assert tags["query"].startswith("Read-side analytics")


def test_document_validates_if_validator_installed(document) -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(document)


def _param(document: dict[str, Any], path: str, name: str) -> dict[str, Any]:
    operation = document["paths"][path]["get"]
    return next(p for p in operation["parameters"] if p.get("name") == name)


def test_declared_bounds_are_in_the_document(document) -> None:
    days = _param(document, "/api/analytics/workspace/overview", "days")["schema"]
    assert (days["minimum"], days["maximum"]) == (1, 3650)
    limit = _param(document, "/api/analytics/workspace/regions", "limit")["schema"]
    assert (limit["minimum"], limit["maximum"]) == (1, 1000)
    granularity = _param(document, "/api/analytics/workspace/timeseries", "granularity")
    assert granularity["schema"]["enum"] == ["hour", "day", "week", "month"]
    schemas = document["components"]["schemas"]
    ttl = schemas["LiveTokenRequest"]["properties"]["ttlSeconds"]
    assert (ttl["minimum"], ttl["maximum"]) == (1, 300)
    assert schemas["ClickEvent"]["required"] == ["linkId"]
    assert schemas["ClickEvent"]["properties"]["linkId"]["minimum"] == 1
    assert schemas["LeadEvent"]["required"] == ["clickId", "customerId"]
    assert schemas["RawEventsRequest"]["required"] == ["start", "end"]


def test_services_enforce_the_declared_bounds() -> None:
    from services import field_rules, protos, timerange
    from services.audit import listing
    from services.auth import live_tokens
    from services.export import servicer
    from services.live.feed import requests
    from services.query import drilldowns, embed_tokens, params, raw

    query = protos.common_pb2.AnalyticsQuery.DESCRIPTOR
    assert params.MAX_LIMIT == field_rules.maximum(query, "limit")
    assert drilldowns.MAX_SESSION_MINUTES == field_rules.maximum(query, "session_minutes")
    assert timerange.GRANULARITIES == field_rules.one_of(query, "granularity")
    assert raw.MAX_LIMIT == field_rules.maximum(
        protos.query_pb2.RawEventsRequest.DESCRIPTOR, "limit"
    )
    assert (embed_tokens.MIN_TTL_SECONDS, embed_tokens.MAX_TTL_SECONDS) == field_rules.bounds(
        protos.query_pb2.CreateEmbedTokenRequest.DESCRIPTOR, "ttl_seconds"
    )
    live = protos.live_pb2
    assert live_tokens.MAX_SECONDS == field_rules.maximum(
        live.LiveTokenRequest.DESCRIPTOR, "ttl_seconds"
    )
    assert requests.MAX_LIMIT == field_rules.maximum(live.LiveRequest.DESCRIPTOR, "limit")
    assert servicer.MAX_PAGE == field_rules.maximum(
        protos.export_pb2.ListExportsRequest.DESCRIPTOR, "limit"
    )
    assert listing.MAX_LIMIT == field_rules.maximum(
        protos.audit_pb2.ListAuditLogRequest.DESCRIPTOR, "limit"
    )
    with pytest.raises(Exception, match="days must be between 1 and 3650"):
        field_rules.check_between(3651, query, "days")


def test_declared_success_statuses(document, routes) -> None:
    accepted = {
        f"{method.upper()} {path}": op["responses"]
        for path, item in document["paths"].items()
        for method, op in item.items()
        if "202" in op["responses"]
    }
    assert set(accepted) == {
        "GET /api/analytics/export",
        "POST /api/analytics/exports",
        "POST /api/analytics/batch",
    }
    assert "200" not in accepted["POST /api/analytics/exports"]
    assert "200" in accepted["POST /api/analytics/batch"]
    job = accepted["GET /api/analytics/export"]["202"]["content"]["application/json"]["schema"]
    assert job["properties"]["data"] == {"$ref": "#/components/schemas/ExportJob"}
    header = document["components"]["parameters"]["WorkspaceId"]
    assert header["schema"]["type"] == "integer"


def test_summary_is_the_first_sentence_else_the_rpc_name() -> None:
    assert summary_and_description("GetX", "Totals of `one` link. The rest\nof it.") == (
        "Totals of one link",
        "The rest\nof it.",
    )
    assert summary_and_description("GetLinkGeo", "") == ("Get link geo", "")
    long = "A sentence far too long to be a summary " * 4 + "."
    assert summary_and_description("GetLinkGeo", long) == ("Get link geo", long)
    assert summary_and_description("GetX", "No full stop") == ("Get x", "No full stop")


def test_optional_fields_are_nullable_in_bodies_not_in_query_strings(document) -> None:
    schemas = document["components"]["schemas"]
    meta = schemas["ResponseMeta"]["properties"]
    assert meta["dataAsOf"]["type"] == ["string", "null"] and meta["start"]["type"] == "string"
    assert schemas["ExportJob"]["properties"]["rowsEstimated"]["type"] == ["integer", "null"]
    cursor = schemas["RawEventsResponse"]["properties"]["next_cursor"]
    assert cursor["type"] == ["string", "null"]
    ttl = schemas["LiveTokenRequest"]["properties"]["ttlSeconds"]
    assert ttl["type"] == ["integer", "null"] and ttl["maximum"] == 300
    days = _param(document, "/api/analytics/workspace/overview", "days")["schema"]
    assert days["type"] == "integer"  # a query parameter is given or not: never null
