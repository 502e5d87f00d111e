"""Counting the events the live service rejects as invalid (accepted and duplicate events are
counted where the stream takes them, services.live.stream)."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
from google.protobuf.message import DecodeError

from services import errors, protos
from services.telemetry import measure

# Refusals of the events themselves (a store outage or an auth refusal rejects no event).
REJECTING_CODES = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.OUT_OF_RANGE,
    }
)

Method = TypeVar("Method", bound=Callable[..., Awaitable[Any]])


def is_rejection(exc: BaseException) -> bool:
    """True when exc refuses the request's events as invalid."""
    return isinstance(exc, errors.ApiError) and exc.code in REJECTING_CODES


def rejected(exc: BaseException, kind: str, count: int) -> None:
    """Count count events of kind rejected if exc is a rejection."""
    if is_rejection(exc):
        measure.rejected(kind, count)


def _wire_count(message: type[Any], data: Any) -> int:
    if not isinstance(data, bytes):
        return len(getattr(data, "events", ())) or 1
    try:
        return len(message.FromString(data).events) or 1
    except DecodeError:
        return 1


def ingest_request_events(data: Any) -> int:
    """Events of an IngestRequest (its bytes, as the live service gets them); 1 if unreadable."""
    return _wire_count(protos.live_pb2.IngestRequest, data)


def track_clicks_events(data: Any) -> int:
    """Clicks of a TrackClicksRequest (its bytes); 1 if unreadable."""
    return _wire_count(protos.live_pb2.TrackClicksRequest, data)


def counts_rejected(
    kind: str, events: Callable[[Any], int] = lambda _request: 1
) -> Callable[[Method], Method]:
    """Decorate a unary ingestion RPC: when it refuses its request as invalid, count the
    request's events (events(request)) of kind as rejected."""

    def decorate(method: Method) -> Method:
        @functools.wraps(method)
        async def counted(self: Any, request: Any, context: Any) -> Any:
            try:
                return await method(self, request, context)
            except Exception as exc:
                rejected(exc, kind, events(request))
                raise

        return counted  # type: ignore[return-value]

    return decorate
