"""Server-streaming RPCs served as WebSockets: one JSON text frame per streamed message.

Auth: the client's Authorization header, or ``?token=`` (browsers cannot set headers on a
WebSocket) holding a short-lived live token from ``POST /api/analytics/live/token``, is
forwarded to the service as the bearer token. Long-lived API keys and session tokens are
refused in the URL (4401), where proxies and logs would keep them.

Heartbeats: every ``GATEWAY_WS_HEARTBEAT_SECONDS`` (15 s; 0 turns them off) the gateway sends
the text frame ``{"type":"heartbeat"}``, so a client (a browser too, which never sees
protocol pings) can tell a quiet feed from a dead one. Streamed messages never have a "type".

Slow consumers: each connection has a bounded send queue of ``GATEWAY_WS_SEND_QUEUE`` frames
(1,000). A client that does not read fast enough fills it (after the socket buffers), and the
gateway then cancels its stream and closes the socket with 4008 "consumer too slow" instead of
buffering without bound; other connections are unaffected. Reconnect with the cursor of the
last event received to resume.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import grpc
import orjson
from starlette.websockets import WebSocket, WebSocketDisconnect

from gateway.http_errors import GatewayError, client_error
from gateway.metadata import outgoing_metadata, request_id
from gateway.pipeline import BackendsRef
from gateway.responses import error_body
from services.auth.live_tokens import PREFIX as LIVE_TOKEN_PREFIX
from services.config import Settings
from services.contract.binding import RequestBinder
from services.contract.jsonify import message_to_dict
from services.contract.routes import Route
from services.telemetry import measure

logger = logging.getLogger(__name__)

NORMAL_CLOSURE = 1000
# Browsers cannot set headers on a WebSocket: the bearer token may come as ?token=.
TOKEN_PARAMETER = "token"
# Close codes 4000 + HTTP status (4401, 4403, 4501, ...) say why the feed ended.
ERROR_CLOSE_BASE = 4000
# The client does not read fast enough: its send queue is full.
TOO_SLOW_CLOSE = 4008
TOO_SLOW_REASON = "consumer too slow"
HEARTBEAT_FRAME = '{"type":"heartbeat"}'

WebSocketEndpoint = Callable[[WebSocket], Awaitable[None]]


@dataclass(frozen=True)
class WebSocketConfig:
    """Heartbeat interval (not positive: none) and send-queue bound of every WebSocket."""

    heartbeat_seconds: float
    send_queue: int

    @classmethod
    def from_settings(cls, settings: Settings) -> WebSocketConfig:
        """The gateway_ws_* settings."""
        return cls(settings.gateway_ws_heartbeat_seconds, settings.gateway_ws_send_queue)


class _ClientGone(Exception):
    """The client closed the socket while frames were being sent."""


class _TooSlow(Exception):
    """The connection's send queue is full: the client does not keep up."""


@dataclass(frozen=True)
class _End:
    """Last item of a send queue: the stream ended, with failure if it failed."""

    failure: Exception | None = None


Outbox = asyncio.Queue[str | _End]


def _offer(outbox: Outbox, frame: str) -> None:
    try:
        outbox.put_nowait(frame)
    except asyncio.QueueFull:
        raise _TooSlow from None


async def _fail(websocket: WebSocket, error: GatewayError) -> None:
    """Send the error frame and close with 4000 + the HTTP status; ignore a gone client."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
        await websocket.send_text(orjson.dumps(error_body(error)).decode())
        await websocket.close(code=ERROR_CLOSE_BASE + error.status, reason=error.code[:120])


async def _pump(call: grpc.aio.UnaryStreamCall, outbox: Outbox, route: Route) -> None:
    """Queue every streamed message as a text frame, then the end of the stream."""
    proto_names = route.options.proto_field_names
    try:
        async for item in call:
            _offer(
                outbox, orjson.dumps(message_to_dict(item, proto_field_names=proto_names)).decode()
            )
    except _TooSlow:
        raise
    except Exception as exc:  # the RPC failed: its error goes out after the frames queued
        await outbox.put(_End(exc))
        return
    await outbox.put(_End())


async def _send(websocket: WebSocket, outbox: Outbox) -> _End:
    """Send queued frames in order until the end of the stream."""
    while True:
        item = await outbox.get()
        if isinstance(item, _End):
            return item
        try:
            await websocket.send_text(item)
        except (WebSocketDisconnect, RuntimeError, OSError) as exc:
            raise _ClientGone from exc


async def _beat(outbox: Outbox, interval: float) -> None:
    """Queue a heartbeat frame every interval seconds; never when interval is not positive."""
    if interval <= 0:
        await asyncio.Event().wait()
    while True:
        await asyncio.sleep(interval)
        _offer(outbox, HEARTBEAT_FRAME)


async def _until_disconnect(websocket: WebSocket) -> None:
    """Drain client frames (ignored) until the client disconnects."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return


def _too_slow(done: set[asyncio.Task[object]]) -> bool:
    return any(
        task.done() and not task.cancelled() and isinstance(task.exception(), _TooSlow)
        for task in done
    )


async def _close_too_slow(websocket: WebSocket) -> None:
    # The close frame waits behind what the client has not read yet; the server's close
    # timeout then drops a client that reads nothing at all.
    with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
        await websocket.close(code=TOO_SLOW_CLOSE, reason=TOO_SLOW_REASON)


def websocket_endpoint(
    route: Route,
    binder: RequestBinder,
    backends: BackendsRef,
    config: WebSocketConfig,
) -> WebSocketEndpoint:
    """The WebSocket endpoint serving route's server-streaming RPC."""

    async def endpoint(websocket: WebSocket) -> None:
        rid = request_id(websocket)
        await websocket.accept(headers=[(b"x-request-id", rid.encode())])
        try:
            token = websocket.query_params.get(TOKEN_PARAMETER)
            if token and not token.startswith(LIVE_TOKEN_PREFIX):
                raise GatewayError(
                    401,
                    "unauthorized",
                    "?token= takes a short-lived token from POST /api/analytics/live/token;"
                    " send API keys in the Authorization header",
                    TOKEN_PARAMETER,
                )
            query = [
                (name, value)
                for name, value in websocket.query_params.multi_items()
                if name != TOKEN_PARAMETER or binder.accepts(name)
            ]
            message = binder.bind(websocket.path_params, query)
            metadata = outgoing_metadata(websocket, fallback_token=token)
            call = backends.get().server_stream(route, message, metadata)
        except Exception as exc:
            await _fail(websocket, client_error(exc, route, rid, "could not start the stream"))
            return
        outbox: Outbox = asyncio.Queue(maxsize=max(1, config.send_queue))
        pump = asyncio.create_task(_pump(call, outbox, route))
        sender = asyncio.create_task(_send(websocket, outbox))
        listen = asyncio.create_task(_until_disconnect(websocket))
        beat = asyncio.create_task(_beat(outbox, config.heartbeat_seconds))
        tasks: set[asyncio.Task[object]] = {pump, sender, listen, beat}  # type: ignore[arg-type]
        pending = set(tasks)
        try:
            while True:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                # the stream ended and its end is queued: wait for the sender to deliver it
                if done == {pump} and not pump.cancelled() and pump.exception() is None:
                    continue
                break
        finally:
            call.cancel()  # no-op once the stream has ended
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if _too_slow(done):
            measure.websocket_too_slow()
            logger.info("%s: closing a consumer too slow (request %s)", route.key, rid)
            await _close_too_slow(websocket)
            return
        if sender not in done or sender.cancelled():
            return  # the client left first; the call is cancelled
        if isinstance(sender.exception(), _ClientGone):
            return
        if sender.exception() is not None:
            logger.error(
                "%s: sending failed (request %s)", route.key, rid, exc_info=sender.exception()
            )
            return
        failure = sender.result().failure
        if failure is None:
            with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
                await websocket.close(code=NORMAL_CLOSURE)
        else:
            await _fail(websocket, client_error(failure, route, rid, "stream failed"))

    async def counted(websocket: WebSocket) -> None:
        with measure.websocket_open():
            await endpoint(websocket)

    return counted
