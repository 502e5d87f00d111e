"""Errors of the services and their one translation to gRPC status (with google.rpc.ErrorInfo)."""

from __future__ import annotations

from typing import NoReturn

import asyncpg
import grpc
from google.rpc import error_details_pb2, status_pb2

ERROR_DOMAIN = "linkpulse"
STATUS_DETAILS_KEY = "grpc-status-details-bin"


class ApiError(Exception):
    """A failure the caller should see: gRPC code, a machine-readable reason and a message."""

    def __init__(
        self,
        code: grpc.StatusCode,
        reason: str,
        message: str,
        field: str | None = None,
        trailers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.field = field
        # Extra trailing metadata sent with the status (e.g. rate-limit headers).
        self.trailers = trailers


class StoreUnavailable(Exception):
    """A store (ClickHouse, PostgreSQL, Redis) could not be reached."""


def invalid_argument(field: str, message: str) -> ApiError:
    """A request parameter is malformed or out of range."""
    return ApiError(grpc.StatusCode.INVALID_ARGUMENT, "invalid_argument", message, field)


def not_found(
    what: str,
    field: str | None = None,
    *,
    in_workspace: bool = False,
    message: str | None = None,
) -> ApiError:
    """The named resource does not exist in the caller's workspace: "<what> not found" (with
    " in this workspace" when in_workspace), or message when given; field names the parameter."""
    if message is None:
        message = f"{what} not found in this workspace" if in_workspace else f"{what} not found"
    return ApiError(grpc.StatusCode.NOT_FOUND, "not_found", message, field)


def unauthenticated(message: str) -> ApiError:
    """No valid credential."""
    return ApiError(grpc.StatusCode.UNAUTHENTICATED, "unauthorized", message)


def permission_denied(reason: str, message: str) -> ApiError:
    """A valid credential that may not do this."""
    return ApiError(grpc.StatusCode.PERMISSION_DENIED, reason, message)


def unavailable(message: str) -> ApiError:
    """A dependency is down; retrying later may succeed."""
    return ApiError(grpc.StatusCode.UNAVAILABLE, "unavailable", message)


def not_implemented(method: str) -> ApiError:
    """An RPC of the contract that this release does not serve yet."""
    return ApiError(
        grpc.StatusCode.UNIMPLEMENTED, "not_implemented", f"{method} is not available yet"
    )


# SQLSTATE classes (first two characters) to gRPC codes.
_SQLSTATE_CLASSES = {
    "08": grpc.StatusCode.UNAVAILABLE,  # connection exception
    "53": grpc.StatusCode.RESOURCE_EXHAUSTED,  # insufficient resources
    "57": grpc.StatusCode.UNAVAILABLE,  # operator intervention (shutdown)
    "22": grpc.StatusCode.INVALID_ARGUMENT,  # data exception
    "23": grpc.StatusCode.FAILED_PRECONDITION,  # integrity constraint violation
    "40": grpc.StatusCode.ABORTED,  # transaction rollback (serialization, deadlock)
}


def to_api_error(exc: BaseException) -> ApiError | None:
    """The ApiError an exception stands for, or None when it is a bug (answered as INTERNAL)."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, StoreUnavailable):
        return unavailable(str(exc))
    if isinstance(exc, asyncpg.exceptions.UniqueViolationError):
        return ApiError(grpc.StatusCode.ALREADY_EXISTS, "already_exists", "already exists")
    if isinstance(exc, asyncpg.PostgresError):
        sqlstate = getattr(exc, "sqlstate", "") or ""
        code = _SQLSTATE_CLASSES.get(sqlstate[:2])
        if code is not None:
            return ApiError(code, code.name.lower(), f"database: {exc}")
    if isinstance(exc, (OSError, asyncpg.exceptions.InterfaceError)) and not isinstance(
        exc, FileNotFoundError
    ):
        return unavailable(f"a store is unreachable: {exc}")
    return None


def status_details(error: ApiError) -> bytes:
    """google.rpc.Status with an ErrorInfo, serialized for the grpc-status-details-bin trailer."""
    info = error_details_pb2.ErrorInfo(reason=error.reason, domain=ERROR_DOMAIN)
    if error.field:
        info.metadata["field"] = error.field
    status = status_pb2.Status(code=error.code.value[0], message=error.message)
    status.details.add().Pack(info)
    return status.SerializeToString()


async def abort(context: grpc.aio.ServicerContext, error: ApiError) -> NoReturn:
    """End the RPC with the error's status and details, keeping the trailers already set (the
    workspace the call was authorized for)."""
    named = {STATUS_DETAILS_KEY, *(name for name, _ in error.trailers)}
    kept = tuple((k, v) for k, v in (context.trailing_metadata() or ()) if k not in named)
    await context.abort(
        error.code,
        error.message,
        trailing_metadata=((STATUS_DETAILS_KEY, status_details(error)), *error.trailers, *kept),
    )
    raise AssertionError("unreachable")  # context.abort always raises
