"""The plain-body fast path builds exactly what json_format.ParseDict builds, or declines."""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format
from hypothesis import given
from hypothesis import strategies as st

from services import protos
from services.contract.plain_bodies import bind_plain

_INTS = st.one_of(
    st.integers(min_value=-(2**64), max_value=2**64),
    st.integers(min_value=0, max_value=2**53).map(str),
    st.sampled_from(["01", "+1", "1_000", " 1", "1.0", "", "-0"]),
    st.floats(allow_nan=False),
    st.booleans(),
    st.none(),
)
_TEXT = st.one_of(st.text(max_size=8), st.integers(), st.none(), st.booleans())
_CLICK = st.dictionaries(
    st.sampled_from(
        ["linkId", "link_id", "eventId", "ruleId", "country", "userAgent", "ip", "bogus"]
    ),
    st.one_of(_INTS, _TEXT),
    max_size=5,
)


def _parsed(data: Any) -> protos.live_pb2.IngestRequest | None:
    message = protos.live_pb2.IngestRequest()
    try:
        json_format.ParseDict(data, message)
    except (json_format.ParseError, TypeError, ValueError):
        return None
    return message


@given(st.fixed_dictionaries({"events": st.one_of(st.lists(_CLICK, max_size=3), _TEXT)}))
def test_same_message_as_parse_dict_or_declined(data: dict[str, Any]) -> None:
    fast = protos.live_pb2.IngestRequest()
    if bind_plain(data, fast):
        assert _parsed(data) == fast
    else:
        assert fast == protos.live_pb2.IngestRequest()


def test_plain_batch_is_taken() -> None:
    data = {"events": [{"linkId": "7", "country": "DE", "event_id": 9}, {"link_id": 8}]}
    message = protos.live_pb2.IngestRequest()
    assert bind_plain(data, message)
    assert [e.link_id for e in message.events] == [7, 8]
    assert message.events[0].event_id == 9 and message.events[0].country == "DE"


def test_declines_what_only_parse_dict_reads() -> None:
    for data in (
        {"events": [{"linkId": 1, "link_id": 1}]},  # one field under both names
        {"events": [{"linkId": 1.0}]},
        {"events": [{"linkId": "01"}]},
        {"events": [{"linkId": 2**63}]},
        {"events": [{"linkId": True}]},
        {"events": None},
        {"events": [{"unknown": 1}]},
    ):
        assert not bind_plain(data, protos.live_pb2.IngestRequest()), data


def test_null_for_an_optional_field_is_unset() -> None:
    data: dict[str, Any] = {"linkId": None, "days": 7, "ttlSeconds": None}
    message = protos.query_pb2.CreateEmbedTokenRequest()
    assert not bind_plain(data, message)  # null is ParseDict's ...
    json_format.ParseDict(data, message)  # ... which reads it as "not given"
    assert message.days == 7
    assert not message.HasField("link_id") and not message.HasField("ttl_seconds")
