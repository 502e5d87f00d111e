"""The shared server interceptors: error translation (outermost) and authentication."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from services import errors, protos, request_context
from services.auth import principal as principals
from services.auth.authorize import authorize
from services.auth.ratelimit import RateLimiter
from services.auth.resolver import TokenResolver
from services.auth.tokens import bearer_token
from services.grpc_server import metadata_limits
from services.grpc_server.trailers import WORKSPACE_TRAILER
from services.grpc_server.wrapping import Cleanup, no_cleanup, no_error_handling, wrap_handler
from services.request_context import RequestContext
from services.telemetry import log_context

log = logging.getLogger("linkpulse.rpc")

Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]]
# Told of every refusal for a scope or feature (to audit it); must not block or raise.
DeniedHook = Callable[[principals.Principal, str, errors.ApiError, RequestContext], None]


def _metadata(context: grpc.aio.ServicerContext) -> dict[str, str]:
    return {k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}


def _add_trailer(context: grpc.aio.ServicerContext, key: str, value: str) -> None:
    """Append key to the call's trailing metadata, keeping what the handler set."""
    # After an abort the status (and its trailers) has already gone out; this is then a no-op.
    kept = tuple((k, v) for k, v in (context.trailing_metadata() or ()) if k != key)
    context.set_trailing_metadata((*kept, (key, value)))


async def _nothing(_context: grpc.aio.ServicerContext) -> Cleanup:
    return no_cleanup


class ErrorInterceptor(grpc.aio.ServerInterceptor):
    """Translates every exception escaping a handler into one gRPC status with ErrorInfo."""

    async def intercept_service(
        self, continuation: Continuation, details: grpc.HandlerCallDetails
    ) -> Any:
        handler = await continuation(details)
        if handler is None:
            return None
        method = details.method

        async def on_error(exc: BaseException, context: grpc.aio.ServicerContext) -> None:
            if isinstance(exc, grpc.aio.AbortError) or not isinstance(exc, Exception):
                return
            error = errors.to_api_error(exc)
            if error is None and context.code() == grpc.StatusCode.UNIMPLEMENTED:
                error = errors.not_implemented(method.rsplit("/", 1)[-1])
            if error is None:
                log.exception("unhandled error in %s", method)
                error = errors.ApiError(grpc.StatusCode.INTERNAL, "internal", "internal error")
            await errors.abort(context, error)

        return wrap_handler(handler, _nothing, on_error)


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Validates the bearer token, binds the Principal, enforces the RPC's scope and feature."""

    def __init__(
        self,
        resolver: TokenResolver,
        policies: dict[str, protos.options_pb2.RouteOptions],
        on_denied: DeniedHook | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        self._resolver = resolver
        self._policies = policies
        self._on_denied = on_denied
        self._limiter = limiter

    async def intercept_service(
        self, continuation: Continuation, details: grpc.HandlerCallDetails
    ) -> Any:
        handler = await continuation(details)
        policy = self._policies.get(details.method)
        if handler is None or policy is None or policy.public:
            return handler  # health, reflection, and public RPCs authenticate their own way

        unary = handler.unary_unary is not None

        async def before(context: grpc.aio.ServicerContext) -> Cleanup:
            metadata_limits.check_sizes(context.invocation_metadata() or ())
            metadata = _metadata(context)
            principal = await self.authenticate(metadata)
            origin = RequestContext.from_metadata(metadata)
            try:
                authorize(principal, policy)
            except errors.ApiError as refusal:
                self._denied(principal, details.method, refusal, origin)
                raise
            limits = await self.spend(principal, metadata)
            token = principals.bind(principal)
            origin_token = request_context.bind(origin)
            log_context.annotate(workspace=principal.workspace_id)

            def cleanup(_exc: BaseException | None) -> None:
                request_context.unbind(origin_token)
                principals.unbind(token)
                if unary:
                    _add_trailer(context, WORKSPACE_TRAILER, str(principal.workspace_id))
                    # A handler that spent more of the limit (a call of many requests) has set
                    # these trailers itself.
                    spent_more = {k for k, _ in context.trailing_metadata() or ()}
                    for name, value in limits:
                        if name not in spent_more:
                            _add_trailer(context, name, value)

            return cleanup

        return wrap_handler(handler, before, no_error_handling)

    def _denied(
        self,
        principal: principals.Principal,
        method: str,
        refusal: errors.ApiError,
        origin: RequestContext,
    ) -> None:
        if self._on_denied is None:
            return
        try:
            self._on_denied(principal, method, refusal, origin)
        except Exception:  # noqa: BLE001 - auditing a refusal never changes the answer
            log.exception("could not hand a refusal of %s to the audit log", method)

    async def spend(
        self, principal: principals.Principal, metadata: dict[str, str]
    ) -> tuple[tuple[str, str], ...]:
        """Spend one request of the credential's rate limit; its headers as trailers, or
        RESOURCE_EXHAUSTED (429) carrying them when the bucket is empty."""
        if self._limiter is None:
            return ()
        return await self._limiter.charge(principal, metadata)

    async def authenticate(self, metadata: dict[str, str]) -> principals.Principal:
        """The principal of the request's `authorization: Bearer …` metadata."""
        token = bearer_token(metadata.get("authorization", ""))
        if token is None:
            raise errors.unauthenticated("missing bearer token: send 'Authorization: Bearer <key>'")
        workspace = metadata.get("x-workspace-id")
        workspace_id = None
        if workspace:
            if not workspace.isdigit():
                raise errors.invalid_argument("x-workspace-id", "x-workspace-id must be an integer")
            workspace_id = int(workspace)
        return await self._resolver.resolve(token, workspace_id)
