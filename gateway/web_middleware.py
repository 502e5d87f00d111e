"""The HTTP middleware around every route: traces, the access log and request metrics, CORS for
the deployment's allowed origins (none by default), gzip for clients that accept it, and the
query-string limit."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware, GZipResponder
from starlette.types import Receive, Scope, Send

from gateway.limits import QueryLimit
from gateway.request_telemetry import RequestTelemetry
from services.auth.ratelimit import HEADERS as RATE_LIMIT_HEADERS
from services.config import Settings

# Gzip trades CPU for bytes: a middle level compresses JSON nearly as well as 9, several times
# faster.
GZIP_LEVEL = 5
# What a browser may send and read across origins.
CORS_REQUEST_HEADERS = ("authorization", "content-type", "x-request-id", "traceparent")
CORS_EXPOSED_HEADERS = ("x-request-id", "x-cache", "age", "warning", *sorted(RATE_LIMIT_HEADERS))


class Gzip(GZipMiddleware):
    """Starlette's gzip, touching only the requests that accept gzip (the others pass straight
    through, with no per-message wrapper)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Compress the answer when the client accepts gzip and it is large enough."""
        if scope["type"] != "http" or "gzip" not in Headers(scope=scope).get("accept-encoding", ""):
            await self.app(scope, receive, send)
            return
        responder = GZipResponder(
            self.app,
            self.minimum_size,
            compresslevel=self.compresslevel,
            thread_minimum_size=self.thread_minimum_size,
            exclude_content_types=self.exclude_content_types,
        )
        await responder(scope, receive, send)


def web_middleware(settings: Settings) -> list[Middleware]:
    """The middleware stack of the gateway app, outermost first."""
    # Traces, log context, the access line and metrics outermost: every answer is traced,
    # logged and counted as the client gets it.
    stack = [Middleware(RequestTelemetry, access_log=settings.gateway_access_log)]
    if settings.gateway_cors_origins:
        stack.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(settings.gateway_cors_origins),
                allow_methods=["GET", "POST", "DELETE"],
                allow_headers=list(CORS_REQUEST_HEADERS),
                expose_headers=list(CORS_EXPOSED_HEADERS),
                max_age=settings.gateway_cors_max_age_seconds,
            )
        )
    if settings.gateway_gzip_min_bytes > 0:
        stack.append(
            Middleware(Gzip, minimum_size=settings.gateway_gzip_min_bytes, compresslevel=GZIP_LEVEL)
        )
    stack.append(Middleware(QueryLimit, max_bytes=settings.gateway_max_query_bytes))
    return stack
