"""The OpenAPI document: every route, resolvable components, envelopes, errors, comments."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from gateway.comments import load_comments
from gateway.openapi import build_openapi
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
    assert raw["description"].startswith("Seed 004: raw click events")
    tags = {tag["name"]: tag.get("description", "") for tag in document["tags"]}
    assert tags["query"].startswith("Read-side analytics")


def test_document_validates_if_validator_installed(document) -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(document)
