"""Failures of CLI commands: one class per kind, each with its exit status and JSON on stderr."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import grpc
import orjson
import redis.exceptions
from clickhouse_driver import errors as ch_errors

from services import errors


@dataclass(frozen=True)
class ErrorClass:
    """A kind of failure: the `code` printed in the error JSON and the exit status."""

    code: str
    exit_status: int
    meaning: str


OTHER = ErrorClass("error", 1, "any other failure (a bug, a dev-stack step)")
BAD_INPUT = ErrorClass("bad_input", 2, "invalid arguments or values (argparse usage errors too)")
NOT_FOUND = ErrorClass("not_found", 4, "the workspace, key, link, token or job does not exist")
CONFLICT = ErrorClass("conflict", 5, "it exists already or contradicts the stored state")
UNAVAILABLE = ErrorClass("unavailable", 6, "PostgreSQL, Redis or ClickHouse cannot be reached")
CLASSES = (OTHER, BAD_INPUT, NOT_FOUND, CONFLICT, UNAVAILABLE)
# Not an error class: `audit verify` found an altered or removed entry (its report is on stdout).
AUDIT_BROKEN_EXIT = 3
INTERRUPTED_EXIT = 130

_BY_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: BAD_INPUT,
    grpc.StatusCode.OUT_OF_RANGE: BAD_INPUT,
    grpc.StatusCode.NOT_FOUND: NOT_FOUND,
    grpc.StatusCode.ALREADY_EXISTS: CONFLICT,
    grpc.StatusCode.ABORTED: CONFLICT,
    grpc.StatusCode.FAILED_PRECONDITION: CONFLICT,
    grpc.StatusCode.UNAVAILABLE: UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED: UNAVAILABLE,
    grpc.StatusCode.RESOURCE_EXHAUSTED: UNAVAILABLE,
}
_UNREACHABLE = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    ch_errors.NetworkError,
    ch_errors.SocketTimeoutError,
)


class UsageError(Exception):
    """The command line does not parse (raised instead of argparse's exit)."""

    def __init__(self, message: str, usage: str) -> None:
        super().__init__(message)
        self.usage = usage


@dataclass(frozen=True)
class Failure:
    """What a failed command reports: its class, a message and, when known, the field at fault."""

    kind: ErrorClass
    message: str
    field: str | None = None
    usage: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The `{"error": {"code", "message", ...}}` object printed on stderr."""
        body: dict[str, Any] = {"code": self.kind.code, "message": self.message}
        if self.field:
            body["field"] = self.field
        if self.usage:
            body["usage"] = self.usage
        return {"error": body}


def classify(exc: BaseException) -> Failure:
    """The failure an exception of a command stands for."""
    if isinstance(exc, UsageError):
        return Failure(BAD_INPUT, str(exc), usage=exc.usage)
    if isinstance(exc, _UNREACHABLE):
        return Failure(UNAVAILABLE, f"a store is unreachable: {exc}")
    api = errors.to_api_error(exc)
    if api is not None:
        return Failure(_BY_STATUS.get(api.code, OTHER), api.message, api.field)
    if isinstance(exc, ValueError):
        return Failure(BAD_INPUT, str(exc))
    return Failure(OTHER, f"{type(exc).__name__}: {exc}")


def report(failure: Failure) -> int:
    """Print the failure as JSON on stderr; its exit status."""
    sys.stderr.write(orjson.dumps(failure.as_json()).decode() + "\n")
    sys.stderr.flush()
    return failure.kind.exit_status
