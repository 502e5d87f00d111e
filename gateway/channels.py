"""One grpc.aio channel per service (spread over its copies) and generic unary and
server-streaming calls over them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.message import Message

from services.config import Settings
from services.contract.routes import Route
from services.grpc_server.channels import addresses, replica_channels, service_channel
from services.grpc_server.trailers import WORKSPACE_TRAILER
from services.protos import SERVICES
from services.telemetry import log_context

_CHANNEL_OPTIONS = (
    ("grpc.primary_user_agent", "linkpulse-gateway"),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
)

Metadata = Sequence[tuple[str, str]]


@dataclass(frozen=True)
class UnaryResult:
    """A unary call's response with the metadata the service sent around it."""

    response: Message
    initial_metadata: tuple[tuple[str, Any], ...]
    trailing_metadata: tuple[tuple[str, Any], ...]

    def metadata_value(self, key: str) -> Any:
        """The last value of key in trailing, else initial, metadata; None if absent."""
        for source in (self.trailing_metadata, self.initial_metadata):
            for name, value in reversed(source):
                if name == key:
                    return value
        return None


async def _finished(call: grpc.aio.UnaryUnaryCall) -> UnaryResult:
    """The call's result; the workspace the service authorized it for goes to the log fields
    (of a refused call too)."""
    try:
        response = await call
    except grpc.aio.AioRpcError as exc:
        _note_workspace(exc.trailing_metadata() or ())
        raise
    initial = await call.initial_metadata()
    trailing = await call.trailing_metadata()
    _note_workspace(trailing or ())
    return UnaryResult(response, tuple(initial or ()), tuple(trailing or ()))


def _note_workspace(trailing: Any) -> None:
    for key, value in trailing:
        if key == WORKSPACE_TRAILER and isinstance(value, str) and value.isdigit():
            log_context.annotate(workspace=int(value))


def _codec(route: Route) -> dict[str, Any]:
    """The (de)serializers of route's request and response messages."""
    return {
        "request_serializer": route.request_class.SerializeToString,
        "response_deserializer": route.response_class.FromString,
    }


class Backends:
    """The gRPC channels of the four services and the generic calls the gateway makes."""

    def __init__(
        self,
        channels: Mapping[str, grpc.aio.Channel],
        deadline: float,
        replicas: Mapping[str, Sequence[grpc.aio.Channel]] | None = None,
    ) -> None:
        self._channels = dict(channels)
        # Health checks ask every listed copy on its own channel (the service is up when any is).
        self._replicas = {
            service: tuple((replicas or {}).get(service) or (channel,))
            for service, channel in self._channels.items()
        }
        self._deadline = deadline
        self._unary: dict[str, grpc.aio.UnaryUnaryMultiCallable] = {}
        self._streams: dict[str, grpc.aio.UnaryStreamMultiCallable] = {}

    @classmethod
    def connect(cls, settings: Settings, deadline: float) -> Backends:
        """A channel per service over all its copies, plus one per listed copy for health
        checks (TLS as configured; they connect lazily)."""
        channels = {
            service: service_channel(settings, service, _CHANNEL_OPTIONS) for service in SERVICES
        }
        replicas = {
            service: replica_channels(settings, service, _CHANNEL_OPTIONS)
            for service in SERVICES
            if len(addresses(settings.grpc_addr(service))) > 1
        }
        return cls(channels, deadline, replicas)

    @property
    def channels(self) -> Mapping[str, grpc.aio.Channel]:
        """The channels by service key."""
        return self._channels

    @property
    def replicas(self) -> Mapping[str, tuple[grpc.aio.Channel, ...]]:
        """By service key, a channel to each listed copy (the service's channel when one)."""
        return self._replicas

    async def unary(self, route: Route, request: Message, metadata: Metadata) -> UnaryResult:
        """Call route's RPC once; raises grpc.aio.AioRpcError on a non-OK status."""
        callable_ = self._unary.get(route.grpc_path)
        if callable_ is None:
            callable_ = self._unary[route.grpc_path] = self._channels[route.service].unary_unary(
                route.grpc_path, **_codec(route)
            )
        call = callable_(request, metadata=tuple(metadata), timeout=self._deadline)
        return await _finished(call)

    async def unary_rpc(
        self,
        service: str,
        grpc_path: str,
        request: Message,
        response_class: type[Message],
        metadata: Metadata,
    ) -> UnaryResult:
        """Call an RPC no route maps (e.g. one the gateway gathers requests into) once."""
        callable_ = self._unary.get(grpc_path)
        if callable_ is None:
            callable_ = self._unary[grpc_path] = self._channels[service].unary_unary(
                grpc_path,
                request_serializer=type(request).SerializeToString,
                response_deserializer=response_class.FromString,
            )
        call = callable_(request, metadata=tuple(metadata), timeout=self._deadline)
        return await _finished(call)

    def server_stream(
        self, route: Route, request: Message, metadata: Metadata
    ) -> grpc.aio.UnaryStreamCall:
        """Start route's server-streaming RPC, without deadline (feeds are long-lived)."""
        callable_ = self._streams.get(route.grpc_path)
        if callable_ is None:
            callable_ = self._streams[route.grpc_path] = self._channels[route.service].unary_stream(
                route.grpc_path, **_codec(route)
            )
        return callable_(request, metadata=tuple(metadata))

    async def close(self, grace: float | None = None) -> None:
        """Close every channel, letting calls in flight finish within grace seconds."""
        for channel in self._channels.values():
            await channel.close(grace)
        for copies in self._replicas.values():
            for copy in copies:
                if copy not in self._channels.values():
                    await copy.close(grace)
