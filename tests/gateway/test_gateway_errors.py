"""gRPC status to HTTP status and the failure envelope, with the reason from ErrorInfo."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from gateway.http_errors import GatewayError, client_error, from_rpc_error, http_status
from gateway.responses import ENVELOPE_STATUS_CODE, error_body
from services.contract.compiled import contract
from services.errors import invalid_argument

DESIGN_TABLE = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "ABORTED": 409,
    "RESOURCE_EXHAUSTED": 429,
    "UNIMPLEMENTED": 501,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}


@pytest.mark.parametrize("code", list(grpc.StatusCode))
def test_status_mapping(code: grpc.StatusCode) -> None:
    if code is grpc.StatusCode.OK:
        return
    assert http_status(code) == DESIGN_TABLE.get(code.name, 500)


def _rpc_error(code: grpc.StatusCode, details: str, *detail_messages) -> grpc.aio.AioRpcError:
    trailing = grpc.aio.Metadata()
    if detail_messages:
        status = status_pb2.Status(code=code.value[0], message=details)
        for message in detail_messages:
            status.details.add().Pack(message)
        trailing.add("grpc-status-details-bin", status.SerializeToString())
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), trailing, details)


def test_reason_and_field_come_from_error_info() -> None:
    info = error_details_pb2.ErrorInfo(reason="days_too_large", metadata={"field": "days"})
    error = from_rpc_error(
        _rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "days must be at most 90", info), "query"
    )
    assert (error.status, error.code, error.message, error.field) == (
        400,
        "days_too_large",
        "days must be at most 90",
        "days",
    )
    assert error_body(error) == {
        "success": False,
        "error": {"code": "days_too_large", "message": "days must be at most 90", "field": "days"},
    }


def test_refusals_raised_in_the_gateway_map_like_backend_ones() -> None:
    route = next(r for r in contract().routes if r.service == "query")
    refusal = invalid_argument("days", "query parameter 'days' must be an integer")
    error = client_error(refusal, route, "rid")
    assert (error.status, error.code, error.message, error.field) == (
        400,
        "invalid_argument",
        "query parameter 'days' must be an integer",
        "days",
    )
    backend = client_error(_rpc_error(grpc.StatusCode.UNAVAILABLE, "10.0.0.3"), route, "rid")
    assert (backend.status, backend.message) == (503, "the query service is unavailable")
    own = GatewayError(413, "payload_too_large", "too large")
    assert client_error(own, route, "rid") is own
    assert client_error(KeyError("dsn"), route, "rid").to_dict() == {
        "code": "internal",
        "message": "internal error",
    }


def test_without_details_the_code_is_the_status_name() -> None:
    error = from_rpc_error(_rpc_error(grpc.StatusCode.UNIMPLEMENTED, "Method not found!"), "query")
    assert (error.status, error.code, error.message) == (501, "unimplemented", "Method not found!")
    assert error_body(error) == {
        "success": False,
        "error": {"code": "unimplemented", "message": "Method not found!"},
    }


def test_transport_and_crash_text_is_not_passed_on() -> None:
    unreachable = from_rpc_error(
        _rpc_error(grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses; 10.0.0.3"),
        "query",
    )
    assert (unreachable.status, unreachable.code) == (503, "unavailable")
    assert unreachable.message == "the query service is unavailable"
    crash = from_rpc_error(
        _rpc_error(grpc.StatusCode.UNKNOWN, "Unexpected <class 'KeyError'>: 'dsn'"), "export"
    )
    assert (crash.status, crash.code, crash.message) == (500, "unknown", "internal error")


def test_status_code_envelope() -> None:
    error = GatewayError(401, "unauthenticated", "missing bearer token")
    assert error_body(error, ENVELOPE_STATUS_CODE) == {
        "success": False,
        "status_code": 401,
        "message": "missing bearer token",
        "data": None,
    }
