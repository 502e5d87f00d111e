"""HTTP metrics of the gateway: requests and latency by route template (recorded by the request
middleware, gateway/request_telemetry.py, which times every request once), and the /metrics route.

The route label is the template the router matched (`/api/analytics/link/{link_id}/stats`),
never the raw path, so ids in paths make no new series; a request no route matched is "other".
Scrapes of /metrics itself are not counted.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

from services.telemetry import exposition, metrics


def record(scope: Scope, route: str, status: int, seconds: float) -> None:
    """Count and time one HTTP request (WebSockets have their own series; scrapes of /metrics
    are not counted)."""
    if scope["type"] != "http" or scope.get("path") == exposition.PATH:
        return
    method = scope.get("method", "")
    metrics.HTTP_REQUESTS.labels(route, method, str(status)).inc()
    metrics.HTTP_DURATION.labels(route, method).observe(seconds)


async def metrics_endpoint(request: Request) -> Response:
    """The gateway's Prometheus metrics (every worker's, when it runs several)."""
    body, content_type = exposition.render(request.headers.get("accept"))
    return Response(body, media_type=content_type)
