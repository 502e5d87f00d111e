"""The unary request pipeline: bind, call the service, answer in the route's envelope."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import grpc
from google.api import httpbody_pb2
from google.protobuf.message import Message
from starlette.requests import Request
from starlette.responses import Response

from gateway.binding import read_body
from gateway.channels import Backends, UnaryResult
from gateway.click_coalescing import ClickCoalescer
from gateway.disconnects import unless_disconnected
from gateway.http_errors import client_error
from gateway.metadata import outgoing_metadata, request_id
from gateway.responses import error_response, success_response
from services.auth import ratelimit
from services.contract.binding import RequestBinder
from services.contract.jsonify import message_to_dict
from services.contract.routes import Route
from services.grpc_server.trailers import HTTP_STATUS_TRAILER

# What a cache (or any other layer) wraps: the call -> envelope of one bound request.
Pipeline = Callable[[Route, Request, Message], Awaitable[Response]]
PipelineWrapper = Callable[[Pipeline], Pipeline]

_RESULT_STATE = "unary_result"
_FAILED_STATE = "failed_trailers"


def call_result(request: Request) -> UnaryResult | None:
    """The backend call's result (response and metadata) once the pipeline made the call."""
    result = getattr(request.state, _RESULT_STATE, None)
    return result if isinstance(result, UnaryResult) else None


def failure_trailer(request: Request, name: str) -> str | None:
    """A trailer of the backend call that failed (e.g. the workspace it was authorized for)."""
    for key, value in reversed(getattr(request.state, _FAILED_STATE, ())):
        if key == name:
            return value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)
    return None


class BackendsRef:
    """Where the app's lifespan puts the opened channels for the endpoints to reach."""

    def __init__(self) -> None:
        self._backends: Backends | None = None

    def set(self, backends: Backends | None) -> None:
        """Install (or, with None, remove) the open backends."""
        self._backends = backends

    def get(self) -> Backends:
        """The open backends; raises if the app's lifespan has not run."""
        if self._backends is None:
            raise RuntimeError("gateway backends are not open (lifespan not started)")
        return self._backends


def status_override(result: UnaryResult) -> int | None:
    """The HTTP status a service asked for with `x-http-status` metadata, if valid."""
    raw = result.metadata_value(HTTP_STATUS_TRAILER)
    if isinstance(raw, bytes):
        raw = raw.decode("ascii", "replace")
    if isinstance(raw, str) and raw.strip().isdigit() and 100 <= int(raw) <= 599:
        return int(raw)
    return None


def rate_limit_headers(metadata: Iterable[tuple[str, Any]] | None) -> dict[str, str]:
    """The X-RateLimit-* and Retry-After headers a service sent as trailing metadata."""
    found = {}
    for name, value in metadata or ():
        if name in ratelimit.HEADERS:
            found[name] = value.decode() if isinstance(value, bytes) else str(value)
    return found


def render_result(route: Route, result: UnaryResult, headers: Mapping[str, str]) -> Response:
    """The HTTP response of a successful call: raw HttpBody or the JSON envelope."""
    status = status_override(result) or 200
    response = result.response
    if isinstance(response, httpbody_pb2.HttpBody):
        media_type = response.content_type or "application/octet-stream"
        return Response(response.data, status_code=status, media_type=media_type, headers=headers)
    data = message_to_dict(response, proto_field_names=route.options.proto_field_names)
    return success_response(data, route.options.envelope, status, headers)


class UnaryPipeline:
    """Serves unary routes: bind -> call -> envelope, each failure answered in the envelope."""

    def __init__(
        self,
        backends: BackendsRef,
        binders: Mapping[str, RequestBinder],
        max_body_bytes: int,
        wrap: PipelineWrapper | None = None,
    ) -> None:
        self._backends = backends
        self._binders = binders
        self._max_body_bytes = max_body_bytes
        self._call: Pipeline = self.call if wrap is None else wrap(self.call)
        # Concurrent single clicks of one credential go to the live service in one call.
        self._clicks = ClickCoalescer(backends.get)

    async def __call__(self, route: Route, request: Request) -> Response:
        """The response to one HTTP request on route."""
        try:
            body = await read_body(request, self._max_body_bytes) if route.body else None
            message = self._binders[route.key].bind(
                request.path_params, request.query_params.multi_items(), body
            )
        except Exception as exc:
            rid = request_id(request)
            error = client_error(exc, route, rid)
            return error_response(error, route.options.envelope, {"x-request-id": rid})
        return await self._call(route, request, message)

    async def call(self, route: Route, request: Request, message: Message) -> Response:
        """Call route's RPC with the bound message and answer in the route's envelope."""
        rid = request_id(request)
        headers = {"x-request-id": rid}
        envelope = route.options.envelope
        try:
            metadata = outgoing_metadata(request)
            if self._clicks.handles(route):
                call = self._clicks.unary(route, message, metadata)
            else:
                call = self._backends.get().unary(route, message, metadata)
            # A read nobody waits for any more is dropped; a write always runs to its end.
            result = await (
                unless_disconnected(call, request) if route.http_method == "GET" else call
            )
            setattr(request.state, _RESULT_STATE, result)  # for wrapping layers (the cache)
        except Exception as exc:
            if isinstance(exc, grpc.aio.AioRpcError):
                trailers = tuple(exc.trailing_metadata() or ())
                setattr(request.state, _FAILED_STATE, trailers)  # for the cache's stale answers
                headers.update(rate_limit_headers(trailers))
            return error_response(client_error(exc, route, rid), envelope, headers)
        headers.update(rate_limit_headers(result.trailing_metadata))
        try:
            return render_result(route, result, headers)
        except Exception as exc:
            error = client_error(exc, route, rid, "rendering failed")
            return error_response(error, envelope, headers)
