"""gRPC metadata the gateway forwards to the services for each HTTP request."""

from __future__ import annotations

import re
import uuid

from starlette.requests import HTTPConnection

from gateway.http_errors import GatewayError, invalid_argument
from services.grpc_server.metadata_limits import MAX_VALUE_BYTES

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}\Z")
_PRINTABLE = re.compile(r"[\x20-\x7e]*\Z")
_STATE_KEY = "request_id"


def request_id(connection: HTTPConnection) -> str:
    """The request's id: a well-formed X-Request-Id header, else a new one (kept per request)."""
    known = getattr(connection.state, _STATE_KEY, None)
    if isinstance(known, str):
        return known
    given = connection.headers.get("x-request-id", "")
    value = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
    setattr(connection.state, _STATE_KEY, value)
    return value


def header_too_large(name: str) -> GatewayError:
    """The 431 of a header too large to forward to the services, naming it."""
    return GatewayError(
        431,
        "request_header_too_large",
        f"header '{name}' is larger than {MAX_VALUE_BYTES} bytes",
        name,
    )


def _checked(name: str, value: str) -> str:
    # Refused here, well below gRPC's metadata limit: never a transport error, never retryable.
    if len(value) > MAX_VALUE_BYTES:
        raise header_too_large(name)
    if not _PRINTABLE.match(value):
        raise invalid_argument(name, f"header '{name}' must be printable ASCII")
    return value


def outgoing_metadata(
    connection: HTTPConnection, *, fallback_token: str | None = None
) -> tuple[tuple[str, str], ...]:
    """authorization, x-request-id, x-forwarded-for and x-workspace-id for the backend call."""
    headers = connection.headers
    metadata: list[tuple[str, str]] = [("x-request-id", request_id(connection))]
    authorization = headers.get("authorization")
    if authorization:
        metadata.append(("authorization", _checked("authorization", authorization)))
    elif fallback_token:
        metadata.append(("authorization", _checked("token", f"Bearer {fallback_token}")))
    # The peer as uvicorn resolved it (it honours X-Forwarded-For from trusted proxies only);
    # a client's own X-Forwarded-For is not passed on, so it cannot spoof its address.
    if connection.client and connection.client.host:
        metadata.append(("x-forwarded-for", connection.client.host))
    workspace = headers.get("x-workspace-id")
    if workspace:
        metadata.append(("x-workspace-id", _checked("x-workspace-id", workspace)))
    return tuple(metadata)
