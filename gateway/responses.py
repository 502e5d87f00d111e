"""JSON responses in the Analytics API envelopes (standard and seed 004's status_code form)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.responses import Response

from gateway.http_errors import GatewayError
from services import protos

ENVELOPE_STANDARD = protos.options_pb2.ENVELOPE_STANDARD
ENVELOPE_STATUS_CODE = protos.options_pb2.ENVELOPE_STATUS_CODE


class OrjsonResponse(Response):
    """application/json rendered with orjson."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        """Serialize content to JSON bytes."""
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


def success_body(data: Any, envelope: int = ENVELOPE_STANDARD, status: int = 200) -> dict[str, Any]:
    """The success envelope around data (a response message as a dict)."""
    if envelope == ENVELOPE_STATUS_CODE:
        fields = data if isinstance(data, Mapping) else {"data": data}
        return {"success": True, "status_code": status, "message": "", **fields}
    return {"success": True, "data": data}


def error_body(error: GatewayError, envelope: int = ENVELOPE_STANDARD) -> dict[str, Any]:
    """The failure envelope of error."""
    if envelope == ENVELOPE_STATUS_CODE:
        return {
            "success": False,
            "status_code": error.status,
            "message": error.message,
            "data": None,
        }
    return {"success": False, "error": error.to_dict()}


def success_response(
    data: Any,
    envelope: int = ENVELOPE_STANDARD,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """A JSON success response in the route's envelope."""
    return OrjsonResponse(success_body(data, envelope, status), status_code=status, headers=headers)


def error_response(
    error: GatewayError,
    envelope: int = ENVELOPE_STANDARD,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """A JSON failure response in the route's envelope."""
    return OrjsonResponse(error_body(error, envelope), status_code=error.status, headers=headers)
