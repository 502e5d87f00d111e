"""Server-streaming RPCs served as WebSockets: one JSON text frame per streamed message."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import grpc
import orjson
from starlette.websockets import WebSocket, WebSocketDisconnect

from gateway.binding import RequestBinder
from gateway.errors import GatewayError, from_rpc_error, internal_error
from gateway.jsonify import message_to_dict
from gateway.metadata import outgoing_metadata, request_id
from gateway.pipeline import BackendsRef
from gateway.responses import error_body
from gateway.routes import Route

logger = logging.getLogger(__name__)

NORMAL_CLOSURE = 1000
# Browsers cannot set headers on a WebSocket: the bearer token may come as ?token=.
TOKEN_PARAMETER = "token"
# Close codes 4000 + HTTP status (4401, 4403, 4501, ...) say why the feed ended.
ERROR_CLOSE_BASE = 4000

WebSocketEndpoint = Callable[[WebSocket], Awaitable[None]]


class _ClientGone(Exception):
    """The client closed the socket while frames were being sent."""


async def _fail(websocket: WebSocket, error: GatewayError) -> None:
    """Send the error frame and close with 4000 + the HTTP status; ignore a gone client."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
        await websocket.send_text(orjson.dumps(error_body(error)).decode())
        await websocket.close(code=ERROR_CLOSE_BASE + error.status, reason=error.code[:120])


async def _pump(call: grpc.aio.UnaryStreamCall, websocket: WebSocket, route: Route) -> None:
    """Forward every streamed message as a text frame until the stream ends."""
    proto_names = route.options.proto_field_names
    async for item in call:
        frame = orjson.dumps(message_to_dict(item, proto_field_names=proto_names)).decode()
        try:
            await websocket.send_text(frame)
        except (WebSocketDisconnect, RuntimeError, OSError) as exc:
            raise _ClientGone from exc


async def _until_disconnect(websocket: WebSocket) -> None:
    """Drain client frames (ignored) until the client disconnects."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return


def websocket_endpoint(
    route: Route, binder: RequestBinder, backends: BackendsRef
) -> WebSocketEndpoint:
    """The WebSocket endpoint serving route's server-streaming RPC."""

    async def endpoint(websocket: WebSocket) -> None:
        rid = request_id(websocket)
        await websocket.accept(headers=[(b"x-request-id", rid.encode())])
        try:
            token = websocket.query_params.get(TOKEN_PARAMETER)
            query = [
                (name, value)
                for name, value in websocket.query_params.multi_items()
                if name != TOKEN_PARAMETER or binder.accepts(name)
            ]
            message = binder.bind(websocket.path_params, query)
            metadata = outgoing_metadata(websocket, fallback_token=token)
            call = backends.get().server_stream(route, message, metadata)
        except GatewayError as error:
            await _fail(websocket, error)
            return
        except Exception:
            logger.exception("%s: could not start the stream (request %s)", route.key, rid)
            await _fail(websocket, internal_error())
            return
        pump = asyncio.create_task(_pump(call, websocket, route))
        listen = asyncio.create_task(_until_disconnect(websocket))
        try:
            done, _ = await asyncio.wait({pump, listen}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            call.cancel()  # no-op once the stream has ended
            for task in (pump, listen):
                task.cancel()
            await asyncio.gather(pump, listen, return_exceptions=True)
        if pump not in done or pump.cancelled():
            return  # the client left first; the call is cancelled
        failure = pump.exception()
        if failure is None:
            with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
                await websocket.close(code=NORMAL_CLOSURE)
        elif isinstance(failure, _ClientGone):
            return
        elif isinstance(failure, grpc.RpcError):
            await _fail(websocket, from_rpc_error(failure, route.service))
        else:
            logger.error("%s: stream failed (request %s)", route.key, rid, exc_info=failure)
            await _fail(websocket, internal_error())

    return endpoint
