"""Responses as JSON: 64-bit integers are numbers, defaults are printed, names follow the route."""

from __future__ import annotations

import orjson
from google.protobuf import struct_pb2

from services import protos
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
    assert data["meta"]["notices"] == [] and data["meta"]["dataAsOf"] == ""
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
    assert data["next_cursor"] == ""
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
