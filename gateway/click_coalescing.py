"""Concurrent `POST /api/track/click` requests of one credential in one `TrackClicks` call.

A gRPC call costs the gateway and the live service far more than the click it carries. While a
credential's call is in flight, the clicks arriving for it wait and then go together in the
next call (at most MAX_CLICKS); a lone click is sent at once, as a plain TrackClick.
Each request is answered only once the live service has enqueued its click, with the answer
TrackClick would give: a click the service did not take, and every click of a call refused
before anything was enqueued (authentication, scope, rate limit), is sent again alone, so its
error is exactly TrackClick's; any other failure of the call is every click's answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

import grpc
from google.protobuf.message import Message

from gateway.channels import Backends, Metadata, UnaryResult
from services import protos
from services.contract.routes import Route

TRACK_CLICK = "/linkpulse.v1.LiveService/TrackClick"
TRACK_CLICKS = "/linkpulse.v1.LiveService/TrackClicks"
MAX_CLICKS = 256
# Failures of a whole call that leave nothing enqueued: each click is then sent alone.
_SEND_ALONE = frozenset(
    {
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.UNIMPLEMENTED,
    }
)


@dataclass
class _Waiting:
    message: Message
    metadata: Metadata
    answer: asyncio.Future[UnaryResult]


@dataclass
class _Lane:
    """The clicks of one credential waiting for the call in flight to end."""

    waiting: list[_Waiting] = field(default_factory=list)


def _credential(metadata: Metadata) -> tuple[str, str]:
    found = dict(metadata)
    return found.get("authorization", ""), found.get("x-workspace-id", "")


class ClickCoalescer:
    """Sends TrackClick requests, gathering those that arrive together into TrackClicks."""

    def __init__(self, backends: Callable[[], Backends], max_clicks: int = MAX_CLICKS) -> None:
        self._backends = backends
        self._max = max_clicks
        self._lanes: dict[tuple[str, str], _Lane] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @staticmethod
    def handles(route: Route) -> bool:
        """True for the route whose requests this gathers."""
        return route.grpc_path == TRACK_CLICK

    async def unary(self, route: Route, message: Message, metadata: Metadata) -> UnaryResult:
        """TrackClick's result for this request, possibly sent with others of its credential."""
        key = _credential(metadata)
        answer: asyncio.Future[UnaryResult] = asyncio.get_running_loop().create_future()
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = _Lane()
            # A task of its own: a request that goes away does not strand the others' clicks.
            # It starts on the loop's next turn, so the clicks read in this one go with it.
            task = asyncio.create_task(self._drain(route, key, lane))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        lane.waiting.append(_Waiting(message, metadata, answer))
        return await answer

    async def _drain(self, route: Route, key: tuple[str, str], lane: _Lane) -> None:
        batch: list[_Waiting] = []
        try:
            while lane.waiting:
                batch, lane.waiting = lane.waiting[: self._max], lane.waiting[self._max :]
                try:
                    await self._send(route, batch)
                except Exception as exc:  # noqa: BLE001 - every click's answer
                    for click in batch:
                        if not click.answer.done():
                            click.answer.set_exception(exc)
        finally:
            del self._lanes[key]
            for click in (*batch, *lane.waiting):  # only when cancelled (shutdown)
                if not click.answer.done():
                    click.answer.cancel()

    async def _alone(self, route: Route, click: _Waiting) -> None:
        try:
            result = await self._backends().unary(route, click.message, click.metadata)
        except Exception as exc:  # noqa: BLE001 - the request's own answer
            if not click.answer.done():
                click.answer.set_exception(exc)
            return
        if not click.answer.done():
            click.answer.set_result(result)

    async def _send(self, route: Route, batch: list[_Waiting]) -> None:
        if len(batch) == 1:
            await self._alone(route, batch[0])
            return
        request = protos.live_pb2.TrackClicksRequest(events=[c.message for c in batch])
        try:
            result = await self._backends().unary_rpc(
                route.service,
                TRACK_CLICKS,
                request,
                protos.live_pb2.TrackClicksResponse,
                batch[0].metadata,
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() in _SEND_ALONE:
                await asyncio.gather(*(self._alone(route, c) for c in batch))
                return
            for click in batch:
                if not click.answer.done():
                    click.answer.set_exception(exc)
            return
        clicks = result.response.clicks  # type: ignore[attr-defined]
        again = []
        for waiting, click in zip(batch, clicks, strict=True):
            if not click.taken:
                again.append(waiting)
            elif not waiting.answer.done():
                response = protos.live_pb2.IngestResponse(
                    accepted=1, event_ids=[click.event_id], duplicates=int(click.duplicate)
                )
                waiting.answer.set_result(
                    UnaryResult(response, result.initial_metadata, result.trailing_metadata)
                )
        if again:
            await asyncio.gather(*(self._alone(route, c) for c in again))
