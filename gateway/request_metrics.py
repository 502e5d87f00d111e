"""HTTP metrics of the gateway: requests and latency by route template, and the /metrics route.

The route label is the template the router matched (`/api/analytics/link/{link_id}/stats`),
never the raw path, so ids in paths make no new series; a request no route matched is "other".
Scrapes of /metrics itself are not counted.
"""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.route_label import route_template
from services.telemetry import exposition, metrics


class RequestMetrics:
    """Pure ASGI middleware counting and timing every HTTP request (WebSockets have their own)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") == exposition.PATH:
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # an exception escaping without a response is answered 500 by the server

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = route_template(scope)
            method = scope.get("method", "")
            metrics.HTTP_REQUESTS.labels(route, method, str(status)).inc()
            metrics.HTTP_DURATION.labels(route, method).observe(time.perf_counter() - start)


async def metrics_endpoint(request: Request) -> Response:
    """The gateway's Prometheus metrics (every worker's, when it runs several)."""
    body, content_type = exposition.render(request.headers.get("accept"))
    return Response(body, media_type=content_type)
