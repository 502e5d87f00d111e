"""The outermost server interceptor: binds each RPC's log fields (the gateway's request id, the
RPC as the route; the auth interceptor adds the caller's workspace) and counts and times every
call by service, method and status code."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from services.grpc_server.wrapping import Cleanup, no_error_handling, wrap_handler
from services.request_context import RequestContext
from services.telemetry import log_context, metrics

Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]]


def _code(context: grpc.aio.ServicerContext, exc: BaseException | None) -> str:
    """The status name the call ended with."""
    if isinstance(exc, asyncio.CancelledError | GeneratorExit):  # the client went away
        return grpc.StatusCode.CANCELLED.name
    code = context.code()
    if code is None and exc is not None and not isinstance(exc, grpc.aio.AbortError):
        return grpc.StatusCode.UNKNOWN.name  # what grpc answers an exception no one translated
    if isinstance(code, grpc.StatusCode):
        return code.name
    if isinstance(code, int):  # the aio context reports a code set by abort as its number
        return next((c.name for c in grpc.StatusCode if c.value[0] == code), "UNKNOWN")
    return grpc.StatusCode.OK.name


class CallTelemetry(grpc.aio.ServerInterceptor):
    """Log fields and linkpulse_grpc_requests_total / _duration_seconds of each call; outermost,
    so every line of the call has its fields and the status is the one the error interceptor
    translated an exception into."""

    async def intercept_service(
        self, continuation: Continuation, details: grpc.HandlerCallDetails
    ) -> Any:
        handler = await continuation(details)
        if handler is None:
            return None  # unknown method: nothing served, and no series for arbitrary names
        service, _, method = details.method.lstrip("/").rpartition("/")

        route = details.method

        async def before(context: grpc.aio.ServicerContext) -> Cleanup:
            start = time.perf_counter()
            metadata = {
                k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)
            }
            request_id = RequestContext.from_metadata(metadata).request_id
            token = log_context.bind(
                route=route, **({"request_id": request_id} if request_id else {})
            )

            def done(exc: BaseException | None) -> None:
                metrics.GRPC_REQUESTS.labels(service, method, _code(context, exc)).inc()
                metrics.GRPC_DURATION.labels(service, method).observe(time.perf_counter() - start)
                # A stream's generator may be closed from another context: nothing to restore.
                with contextlib.suppress(ValueError):
                    log_context.unbind(token)

            return done

        return wrap_handler(handler, before, no_error_handling)
