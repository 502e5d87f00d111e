"""Path, query and body binding into request messages; INVALID_ARGUMENT naming the parameter."""

from __future__ import annotations

from collections.abc import Mapping

import grpc
import pytest

from services.contract.binding import RequestBinder
from services.contract.compiled import contract
from services.errors import ApiError

INVALID = grpc.StatusCode.INVALID_ARGUMENT


@pytest.fixture(scope="module")
def binders() -> Mapping[str, RequestBinder]:
    return contract().binders


def _error(binder: RequestBinder, query=(), path=None, body=None) -> ApiError:
    with pytest.raises(ApiError) as caught:
        binder.bind(path or {}, list(query), body)
    return caught.value


OVERVIEW = "GET /api/analytics/workspace/overview"
LINK_SUMMARY = "GET /api/analytics/{link_id}/summary"
RAW_EVENTS = "POST /v1/analytics"


def test_camel_and_snake_names_bind(binders) -> None:
    message = binders[OVERVIEW].bind(
        {},
        [("days", "7"), ("campaignId", "12"), ("folder_id", "3"), ("includeBots", "true")],
    )
    assert message.days == 7
    assert message.campaign_id == 12
    assert message.folder_id == 3
    assert message.include_bots is True


def test_optional_fields_are_set_only_when_given(binders) -> None:
    message = binders[OVERVIEW].bind({}, [("timezone", "Europe/Paris")])
    assert message.timezone == "Europe/Paris"
    assert not message.HasField("days")
    assert not message.HasField("limit")
    zero = binders[OVERVIEW].bind({}, [("limit", "0")])
    assert zero.HasField("limit") and zero.limit == 0


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("days", "abc", "query parameter 'days' must be an integer"),
        ("days", "7.5", "query parameter 'days' must be an integer"),
        ("days", "", "query parameter 'days' must be an integer"),
        ("campaignId", "12x", "query parameter 'campaignId' must be an integer"),
        ("includeBots", "maybe", "query parameter 'includeBots' must be true or false"),
        (
            "days",
            "99999999999",
            "query parameter 'days' must be an integer between -2147483648 and 2147483647",
        ),
    ],
)
def test_typed_errors_name_the_parameter(binders, name: str, value: str, message: str) -> None:
    error = _error(binders[OVERVIEW], [(name, value)])
    assert (error.code, error.reason, error.message, error.field) == (
        INVALID,
        "invalid_argument",
        message,
        name,
    )


def test_unknown_parameter_is_refused(binders) -> None:
    error = _error(binders[OVERVIEW], [("days", "7"), ("colour", "red")])
    assert error.code == INVALID
    assert error.message == "unknown query parameter 'colour'"
    assert error.field == "colour"


def test_a_parameter_given_twice_is_refused(binders) -> None:
    error = _error(binders[OVERVIEW], [("campaignId", "1"), ("campaign_id", "2")])
    assert "given more than once" in error.message


def test_path_variables_bind_and_cannot_be_overridden(binders) -> None:
    message = binders[LINK_SUMMARY].bind({"link_id": 42}, [("days", "30")])
    assert message.link_id == 42 and message.days == 30
    error = _error(binders[LINK_SUMMARY], [("linkId", "43")], path={"link_id": 42})
    assert error.message == "query parameter 'linkId' is set by the path"
    overflow = _error(binders[LINK_SUMMARY], path={"link_id": 2**64})
    assert overflow.field == "link_id" and "path parameter 'link_id'" in overflow.message


def test_flattened_message_fields_bind_as_top_level_parameters(binders) -> None:
    message = binders["GET /api/analytics/export"].bind(
        {}, [("days", "7"), ("dataset", "clicks"), ("campaignId", "9"), ("format", "csv")]
    )
    assert message.query.days == 7
    assert message.query.campaign_id == 9
    assert message.dataset == "clicks" and message.format == "csv"
    embed = binders["GET /api/analytics/embed"].bind({}, [("token", "t0k"), ("days", "14")])
    assert embed.token == "t0k" and embed.query.days == 14


def test_flattened_parameters_are_typed_too(binders) -> None:
    error = _error(binders["GET /api/analytics/export"], [("days", "week")])
    assert error.message == "query parameter 'days' must be an integer"


def test_string_path_variable(binders) -> None:
    message = binders["GET /api/analytics/exports/{id}"].bind({"id": "job_1"}, [])
    assert message.id == "job_1"


def test_json_body_accepts_proto_and_json_names(binders) -> None:
    body = b'{"workspace_id": 24, "start": "2025-01-01", "end": "2025-01-07", "urlId": "501"}'
    message = binders[RAW_EVENTS].bind({}, [], body)
    assert message.workspace_id == 24 and message.url_id == 501
    assert message.start == "2025-01-01" and message.end == "2025-01-07"
    assert not message.HasField("limit")


@pytest.mark.parametrize(
    ("body", "message", "field"),
    [
        (b"{not json", "request body is not valid JSON", None),
        (b"[1, 2]", "request body must be a JSON object", None),
        (
            b'{"workspace_id": "abc"}',
            "body field 'workspace_id' must be an integer",
            "workspace_id",
        ),
        (b'{"workspace_id": 1.5}', "body field 'workspace_id' must be an integer", "workspace_id"),
        (b'{"start": 5}', "body field 'start' must be a string", "start"),
        (b'{"colour": "red"}', "unknown field 'colour' in request body", "colour"),
        (
            b'{"limit": 1099511627776}',
            "body field 'limit' must be an integer between -2147483648 and 2147483647",
            "limit",
        ),
    ],
)
def test_body_errors_are_clear(binders, body: bytes, message: str, field: str | None) -> None:
    error = _error(binders[RAW_EVENTS], body=body)
    assert error.code == INVALID and error.reason == "invalid_argument"
    assert error.message.startswith(message)
    assert error.field == field


def test_nested_body_errors_name_the_path(binders) -> None:
    error = _error(binders["POST /api/track/click"], body=b'{"linkId": "x"}')
    assert error.message == "body field 'linkId' must be an integer"
    assert error.field == "linkId"
    batch = _error(binders["POST /api/analytics/batch"], body=b'{"queries": 5}')
    assert batch.message == "body field 'queries' must be an array"


def test_body_routes_take_no_query_parameters(binders) -> None:
    error = _error(binders[RAW_EVENTS], [("start", "2025-01-01")], body=b"{}")
    assert error.message == "unknown query parameter 'start'"


def test_post_without_body_binds_path(binders) -> None:
    message = binders["POST /api/analytics/exports/{id}/cancel"].bind({"id": "job_9"}, [])
    assert message.id == "job_9"
