"""Gateway errors and their translation from gRPC status, once, at this boundary."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import grpc
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2

from services.auth.ratelimit import Decision
from services.contract.routes import Route
from services.errors import STATUS_DETAILS_KEY, ApiError

logger = logging.getLogger(__name__)

# The grpc-gateway mapping; every other code is 500.
HTTP_STATUS: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}

# Without a reason from the service, these carry transport or crash text: not for clients.
_GENERIC_MESSAGES = {
    500: "internal error",
    503: "the {service} service is unavailable",
    504: "the {service} service did not answer in time",
}


class GatewayError(Exception):
    """An error answered to the client: HTTP status, machine code, message, field at fault."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field

    def to_dict(self) -> dict[str, Any]:
        """The `error` object of the failure envelope."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field:
            error["field"] = self.field
        return error

    def __repr__(self) -> str:
        return f"GatewayError({self.status}, {self.code!r}, {self.message!r}, field={self.field!r})"


def invalid_argument(field: str, message: str) -> GatewayError:
    """A 400 `invalid_argument` error naming the parameter at fault."""
    return GatewayError(400, "invalid_argument", message, field)


def rate_limited(decision: Decision) -> GatewayError:
    """The 429 of a credential whose rate-limit bucket is empty."""
    return GatewayError(
        429,
        "rate_limited",
        f"rate limit of {decision.limit} requests per minute exceeded;"
        f" retry after {decision.retry_after_seconds} s",
    )


def internal_error() -> GatewayError:
    """The 500 answered for anything unexpected; the cause goes to the log only."""
    return GatewayError(500, "internal", "internal error")


def http_status(code: grpc.StatusCode) -> int:
    """HTTP status of a gRPC status code."""
    return HTTP_STATUS.get(code, 500)


def code_name(code: grpc.StatusCode) -> str:
    """Lower-case status name, e.g. `invalid_argument`."""
    return str(code.name).lower()


def _details_bytes(trailing_metadata: Iterable[Any] | None) -> bytes | None:
    for item in trailing_metadata or ():
        key, value = item
        if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
            return value
    return None


def status_error_details(
    trailing_metadata: Iterable[Any] | None,
) -> tuple[str | None, str | None, str | None]:
    """(reason, field, message) from the google.rpc.ErrorInfo in the status, if any."""
    raw = _details_bytes(trailing_metadata)
    if raw is None:
        return None, None, None
    status = status_pb2.Status()
    try:
        status.ParseFromString(raw)
    except DecodeError:
        logger.warning("undecodable %s in a backend status", STATUS_DETAILS_KEY)
        return None, None, None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info.reason or None, info.metadata.get("field") or None, None
    return None, None, status.message or None


def from_rpc_error(error: grpc.RpcError, service: str) -> GatewayError:
    """The client-facing error of a failed backend call."""
    code: grpc.StatusCode = error.code()  # type: ignore[attr-defined]
    details: str = error.details() or ""  # type: ignore[attr-defined]
    trailing = error.trailing_metadata()  # type: ignore[attr-defined]
    status = http_status(code)
    reason, field, detail_message = status_error_details(trailing)
    message = detail_message or details
    if reason is None and status in _GENERIC_MESSAGES:
        logger.warning("%s service: %s: %s", service, code.name, details)
        message = _GENERIC_MESSAGES[status].format(service=service)
    return GatewayError(status, reason or code_name(code), message or code_name(code), field)


def from_api_error(error: ApiError) -> GatewayError:
    """The client-facing error of a refusal raised in the gateway's own process (binding)."""
    return GatewayError(http_status(error.code), error.reason, error.message, error.field or None)


def client_error(
    exc: Exception, route: Route, request_id: str, doing: str = "failed"
) -> GatewayError:
    """The error answered for anything raised while serving route; unexpected ones are logged."""
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, ApiError):
        return from_api_error(exc)
    if isinstance(exc, grpc.RpcError):
        return from_rpc_error(exc, route.service)
    logger.error("%s: %s (request %s)", route.key, doing, request_id, exc_info=exc)
    return internal_error()
