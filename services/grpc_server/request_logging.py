"""Server interceptors binding each RPC's log fields: the gateway's request id and the RPC as the
route (outermost, so that every line of the call has them), then the caller's workspace once the
auth interceptor has authenticated it."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from services.auth import principal as principals
from services.grpc_server.wrapping import Cleanup, no_cleanup, no_error_handling, wrap_handler
from services.request_context import RequestContext
from services.telemetry import log_context

Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]]


class RequestLogging(grpc.aio.ServerInterceptor):
    """Binds request_id and route for the log lines of the RPC."""

    async def intercept_service(
        self, continuation: Continuation, details: grpc.HandlerCallDetails
    ) -> Any:
        handler = await continuation(details)
        if handler is None:
            return None
        route = details.method

        async def before(context: grpc.aio.ServicerContext) -> Cleanup:
            metadata = {
                k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)
            }
            request_id = RequestContext.from_metadata(metadata).request_id
            token = log_context.bind(
                route=route, **({"request_id": request_id} if request_id else {})
            )

            def cleanup(_exc: BaseException | None) -> None:
                # A stream's generator may be closed from another context: nothing to restore.
                with contextlib.suppress(ValueError):
                    log_context.unbind(token)

            return cleanup

        return wrap_handler(handler, before, no_error_handling)


class CallerLogging(grpc.aio.ServerInterceptor):
    """Adds the authenticated caller's workspace to the RPC's log fields (after auth)."""

    async def intercept_service(
        self, continuation: Continuation, details: grpc.HandlerCallDetails
    ) -> Any:
        handler = await continuation(details)
        if handler is None:
            return None

        async def before(_context: grpc.aio.ServicerContext) -> Cleanup:
            with contextlib.suppress(LookupError):  # a public RPC has no caller
                log_context.annotate(workspace=principals.current().workspace_id)
            return no_cleanup

        return wrap_handler(handler, before, no_error_handling)
