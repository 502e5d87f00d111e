"""Server-streaming GET routes returning google.api.HttpBody: the chunks as one HTTP body."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
from google.api import httpbody_pb2
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from gateway.http_errors import client_error
from gateway.metadata import outgoing_metadata, request_id
from gateway.pipeline import BackendsRef
from gateway.responses import error_response
from services.contract.binding import RequestBinder
from services.contract.routes import Route

logger = logging.getLogger(__name__)

# Initial metadata of the RPC passed on as response headers.
PASSED_HEADERS = ("content-disposition",)


def download_endpoint(
    route: Route, binder: RequestBinder, backends: BackendsRef
) -> Callable[[Request], Awaitable[Response]]:
    """The endpoint: status and headers from the first chunk, then the rest as it comes."""

    async def endpoint(request: Request) -> Response:
        headers = {"x-request-id": request_id(request)}
        try:
            message = binder.bind(request.path_params, request.query_params.multi_items())
            call = backends.get().server_stream(route, message, outgoing_metadata(request))
            stream = call.__aiter__()
            # The first chunk (or the error) arrives before any byte is sent to the client.
            first: httpbody_pb2.HttpBody = await stream.__anext__()
            for key, value in await call.initial_metadata() or ():
                if key in PASSED_HEADERS and isinstance(value, str):
                    headers[key] = value
        except StopAsyncIteration:
            return Response(b"", headers=headers)
        except Exception as exc:
            error = client_error(exc, route, headers["x-request-id"])
            return error_response(error, headers=headers)

        async def body() -> AsyncIterator[bytes]:
            try:
                yield first.data
                async for chunk in stream:
                    yield chunk.data
            except grpc.RpcError:
                # Headers are gone: the client sees a truncated body (no chunked terminator).
                logger.warning("%s: stream broke (request %s)", route.key, headers["x-request-id"])
                raise
            finally:
                call.cancel()

        media_type = first.content_type or "application/octet-stream"
        return StreamingResponse(body(), media_type=media_type, headers=headers)

    endpoint.__name__ = route.rpc
    return endpoint
