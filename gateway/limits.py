"""Query-string size limit: a request whose query string exceeds GATEWAY_MAX_QUERY_BYTES is
answered 400 (field `query`) before any route runs; a WebSocket is closed with 4400.

(Bodies are limited per route by `binding.read_body`: 413 past GATEWAY_MAX_BODY_BYTES.)
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.http_errors import invalid_argument
from gateway.responses import error_response
from gateway.websocket import ERROR_CLOSE_BASE


class QueryLimit:
    """ASGI middleware refusing oversized query strings."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        size = len(scope.get("query_string", b""))
        if scope["type"] not in ("http", "websocket") or size <= self.max_bytes:
            await self.app(scope, receive, send)
            return
        error = invalid_argument(
            "query", f"query string of {size} bytes exceeds {self.max_bytes} bytes"
        )
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": ERROR_CLOSE_BASE + error.status})
            return
        response = error_response(error)
        await response(scope, receive, send)
