"""Responses as JSON: 64-bit integers are numbers, defaults are printed, unset `optional` scalars
are null, names follow the route."""

from __future__ import annotations

import orjson
from google.protobuf import json_format, struct_pb2

from services import protos
from services.contract.fields import is_optional_scalar
from services.contract.jsonify import message_to_dict

BIG = 2**53 + 7


def test_int64_are_numbers_and_defaults_are_printed() -> None:
    response = protos.common_pb2.OverviewResponse(
        totals=protos.common_pb2.Totals(clicks=BIG, revenue=1.5),
        meta=protos.common_pb2.ResponseMeta(timezone="UTC"),
    )
    data = message_to_dict(response)
    assert data["totals"] == {
        "clicks": BIG,
        "uniqueVisitors": 0,
        "leads": 0,
        "sales": 0,
        "revenue": 1.5,
    }
    assert data["meta"]["notices"] == [] and data["meta"]["dataAsOf"] is None
    assert "previous" not in data  # unset message fields have presence: omitted
    assert f'"clicks":{BIG}'.encode() in orjson.dumps(data)


def test_repeated_and_nested_int64() -> None:
    response = protos.query_pb2.ClickPathsResponse(
        paths=[protos.query_pb2.ClickPath(link_ids=[1, 2**62], count=-(2**63))]
    )
    data = message_to_dict(response)
    assert data["paths"][0]["linkIds"] == [1, 2**62]
    assert data["paths"][0]["count"] == -(2**63)


def test_proto_field_names() -> None:
    response = protos.query_pb2.RawEventsResponse(
        data=[protos.query_pb2.RawClickEvent(id=BIG, workspace_id=24, url_slug="s")]
    )
    data = message_to_dict(response, proto_field_names=True)
    assert data["next_cursor"] is None
    assert data["data"][0]["id"] == BIG
    assert data["data"][0]["workspace_id"] == 24
    assert data["data"][0]["url_slug"] == "s"


def test_well_known_types_keep_their_json_form() -> None:
    values = struct_pb2.Struct()
    values.update({"clicks": 3, "name": "x"})
    result = protos.export_pb2.BatchItemResult(id="a", ok=True, data=values)
    data = message_to_dict(result)
    assert data["data"] == {"clicks": 3.0, "name": "x"}
    assert "error" not in data


def test_unset_optional_scalars_are_null_set_ones_printed() -> None:
    meta = protos.common_pb2.ResponseMeta(start="2026-10-01T00:00:00+00:00", previous_start="")
    data = message_to_dict(meta)
    assert data["previousStart"] == ""  # set, even to "": present
    assert data["previousEnd"] is None and data["dataAsOf"] is None
    assert data["start"] == "2026-10-01T00:00:00+00:00" and data["granularity"] == ""


def test_nulls_in_repeated_and_nested_messages() -> None:
    response = protos.query_pb2.ListEmbedTokensResponse(
        tokens=[
            protos.query_pb2.EmbedToken(id=1, link_id=BIG, revoked_at="2026-10-02T00:00:00Z"),
            protos.query_pb2.EmbedToken(id=2),
        ]
    )
    first, second = message_to_dict(response)["tokens"]
    assert first["linkId"] == BIG and first["revokedAt"] == "2026-10-02T00:00:00Z"
    assert first["token"] is None and first["embedPath"] is None
    assert second["linkId"] is None and second["revokedAt"] is None
    assert second["days"] == 0  # a plain scalar keeps its default
    query = protos.analytics_query_pb2.QueryResponse(
        meta=protos.analytics_query_pb2.QueryMeta(limit=5)
    )
    meta = message_to_dict(query, proto_field_names=True)["meta"]
    assert meta["data_as_of"] is None and meta["compare"] is None and meta["limit"] == 5


def test_only_proto3_optional_scalars_are_nulled() -> None:
    query = protos.common_pb2.AnalyticsQuery.DESCRIPTOR.fields_by_name
    assert is_optional_scalar(query["days"]) and not is_optional_scalar(query["start"])
    value = struct_pb2.Value.DESCRIPTOR.fields_by_name["number_value"]
    assert not is_optional_scalar(value)  # a member of a real oneof
    meta = protos.common_pb2.ResponseMeta.DESCRIPTOR.fields_by_name["sample"]
    assert not is_optional_scalar(meta)  # singular messages: omitted when unset, as before


def test_null_parses_back_to_unset() -> None:
    job = protos.export_pb2.ExportJob(id="e1", status="running", rows_estimated=0)
    data = message_to_dict(job)
    assert data["rowsEstimated"] == 0 and data["finishedAt"] is None
    parsed = json_format.ParseDict(data, protos.export_pb2.ExportJob())
    assert parsed == job and parsed.HasField("rows_estimated")
    assert not parsed.HasField("finished_at") and not parsed.HasField("download_url")
