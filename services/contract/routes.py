"""HTTP bindings of the contract: one Route record per google.api.http binding of an RPC."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from google.api import http_pb2
from google.protobuf.descriptor import FieldDescriptor, MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from services import protos
from services.contract.fields import INTEGER_TYPES, resolve_field_path
from services.contract.honoured import honoured_fields
from services.contract.paths import PathTemplate, openapi_path, parse_template
from services.contract.paths import starlette_path as to_starlette_path

HTTP_BODY = "google.api.HttpBody"
_PATTERNS = ("get", "put", "post", "delete", "patch")


class Streaming(enum.Enum):
    """How an RPC streams, from its descriptor."""

    UNARY = "unary"
    SERVER = "server_streaming"
    CLIENT = "client_streaming"
    BIDI = "bidi_streaming"


@dataclass(frozen=True, eq=False)
class Route:
    """One HTTP binding of one RPC."""

    http_method: str
    template: PathTemplate
    service: str
    service_full_name: str
    rpc: str
    grpc_path: str
    method: MethodDescriptor
    request_class: type[Message]
    response_class: type[Message]
    streaming: Streaming
    body: str
    options: protos.options_pb2.RouteOptions
    path_fields: Mapping[str, tuple[FieldDescriptor, ...]]
    # Names of the request's top-level fields the RPC honours; None: all of them.
    honoured: frozenset[str] | None = None

    @property
    def key(self) -> str:
        """Unique name of the binding, e.g. `GET /api/analytics/{link_id}/summary`."""
        return f"{self.http_method} {self.template.template}"

    @property
    def path(self) -> str:
        """The Starlette path, integer variables with the `:int` convertor."""
        convertors = {
            param: "int"
            for param, fields in self.path_fields.items()
            if fields[-1].type in INTEGER_TYPES
        }
        return to_starlette_path(self.template, convertors)

    @property
    def openapi_path(self) -> str:
        """The OpenAPI path, variables as `{param}`."""
        return openapi_path(self.template)

    @property
    def returns_http_body(self) -> bool:
        """True when the response is a google.api.HttpBody passed through raw."""
        return self.method.output_type.full_name == HTTP_BODY

    @property
    def is_websocket(self) -> bool:
        """True for server-streaming GET bindings, served as WebSockets (but downloads)."""
        return (
            self.streaming is Streaming.SERVER
            and self.http_method == "GET"
            and not self.returns_http_body
        )

    @property
    def is_download(self) -> bool:
        """True for server-streaming GET bindings of HttpBody, served as one streamed body."""
        return (
            self.streaming is Streaming.SERVER
            and self.http_method == "GET"
            and self.returns_http_body
        )

    @property
    def is_servable(self) -> bool:
        """True unless the RPC streams in a way HTTP does not serve (client or bidi streams)."""
        if self.streaming in (Streaming.CLIENT, Streaming.BIDI):
            return False
        return self.streaming is Streaming.UNARY or self.is_websocket or self.is_download


def _streaming(method: MethodDescriptor) -> Streaming:
    if method.client_streaming and method.server_streaming:
        return Streaming.BIDI
    if method.client_streaming:
        return Streaming.CLIENT
    if method.server_streaming:
        return Streaming.SERVER
    return Streaming.UNARY


def http_bindings(rule: http_pb2.HttpRule) -> Iterable[tuple[str, str, str]]:
    """(HTTP method, path template, body) of a rule and its additional bindings."""
    for binding in (rule, *rule.additional_bindings):
        pattern = binding.WhichOneof("pattern")
        if pattern is None:
            continue
        if pattern == "custom":
            yield binding.custom.kind.upper(), binding.custom.path, binding.body
        elif pattern in _PATTERNS:
            yield pattern.upper(), getattr(binding, pattern), binding.body


def build_route(
    service_key: str,
    service: ServiceDescriptor,
    method: MethodDescriptor,
    http_method: str,
    template_text: str,
    body: str,
) -> Route:
    """The Route of one binding; ValueError for a binding the contract cannot serve."""
    template = parse_template(template_text)
    path_fields: dict[str, tuple[FieldDescriptor, ...]] = {}
    for variable in template.variables:
        fields = resolve_field_path(method.input_type, variable.field_path)
        if fields[-1].is_repeated or fields[-1].message_type is not None:
            raise ValueError(
                f"{method.full_name}: path variable {variable.field_path!r} is not scalar"
            )
        path_fields[variable.param] = fields
    if body not in ("", "*"):
        resolve_field_path(method.input_type, body)
    options = protos.options_pb2.RouteOptions()
    options.CopyFrom(method.GetOptions().Extensions[protos.options_pb2.route])
    honoured = honoured_fields(method, options)
    if honoured is not None:
        unhonoured = {fields[-1].name for fields in path_fields.values()} - honoured
        if unhonoured:
            raise ValueError(
                f"{method.full_name}: path variables {sorted(unhonoured)} are not honoured"
            )
    return Route(
        http_method=http_method,
        template=template,
        service=service_key,
        service_full_name=service.full_name,
        rpc=method.name,
        grpc_path=f"/{service.full_name}/{method.name}",
        method=method,
        request_class=GetMessageClass(method.input_type),
        response_class=GetMessageClass(method.output_type),
        streaming=_streaming(method),
        body=body,
        options=options,
        path_fields=path_fields,
        honoured=honoured,
    )
