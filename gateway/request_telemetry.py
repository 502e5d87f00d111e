"""ASGI middleware giving every HTTP request and WebSocket its trace span (continuing the client's
`traceparent`, or starting a trace), its log context (request id, route, workspace), its
access-log line and its metrics: one wrapper times and labels the request for all of them."""

from __future__ import annotations

import time

from opentelemetry import propagate
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway import accesslog, request_metrics
from gateway.metadata import request_id
from gateway.route_label import route_template
from services.telemetry import log_context, tracing

# What a WebSocket's access line reports as its status once accepted.
SWITCHING_PROTOCOLS = 101


class RequestTelemetry:
    """Traces, log context, access log and metrics of each request."""

    def __init__(self, app: ASGIApp, access_log: bool = True) -> None:
        self.app = app
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        rid = request_id(connection)
        method = scope.get("method", "WS") if scope["type"] == "http" else "WS"
        started = time.perf_counter()
        status = [0]

        async def observed(message: Message) -> None:
            kind = message["type"]
            if kind == "http.response.start" or kind == "websocket.http.response.start":
                status[0] = int(message["status"])
            elif kind == "websocket.accept":
                status[0] = SWITCHING_PROTOCOLS
            elif kind == "websocket.close" and status[0] == 0:
                status[0] = int(message.get("code", 1000))
            await send(message)

        token = log_context.bind(request_id=rid)
        span_cm = (
            tracing.tracer().start_as_current_span(
                method,
                context=propagate.extract(connection.headers),
                kind=SpanKind.SERVER,
                attributes={
                    "http.request.method": method,
                    "url.scheme": scope.get("scheme", ""),
                    "linkpulse.request_id": rid,
                },
                record_exception=True,
                set_status_on_exception=True,
            )
            if tracing.enabled()
            else None
        )
        span = span_cm.__enter__() if span_cm is not None else None
        failure: BaseException | None = None
        try:
            await self.app(scope, receive, observed)
        except BaseException as exc:
            failure = exc
            if status[0] == 0:
                status[0] = 500
            raise
        finally:
            route = route_template(scope)
            code = status[0] or 500
            elapsed = time.perf_counter() - started
            request_metrics.record(scope, route, code, elapsed)
            if span is not None:
                span.update_name(f"{method} {route}")
                span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", code)
                if scope["type"] == "http" and code >= 500:
                    span.set_status(Status(StatusCode.ERROR))
            if self.access_log:
                client = connection.client.host if connection.client else ""
                accesslog.record(
                    method=method,
                    target=accesslog.target(scope.get("path", ""), scope.get("query_string", b"")),
                    route=route,
                    status=code,
                    duration_ms=elapsed * 1000,
                    client=client,
                )
            if span_cm is not None:
                if failure is None:
                    span_cm.__exit__(None, None, None)
                else:
                    span_cm.__exit__(type(failure), failure, failure.__traceback__)
            log_context.unbind(token)
