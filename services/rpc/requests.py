"""A route of the contract named by its path, with string parameters, as its request message.

Batch items name a GET route of the Analytics API (`/api/analytics/workspace/overview`,
`/api/analytics/42/summary` or `/api/analytics/:linkId/summary` with `linkId` among the
parameters) and give its query parameters as strings; this binds them the way the gateway
binds a query string, at the descriptor level, so workers need no gateway.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from google.api import annotations_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from services import errors, pb
from services.rpc import scalars
from services.rpc.fields import query_fields
from services.rpc.paths import PathTemplate, match_order_key, parse_template

_PLACEHOLDER = re.compile(r"(?::([A-Za-z_]\w*)|\{([A-Za-z_]\w*)\})\Z")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


@dataclass(frozen=True)
class ReadRoute:
    """One GET binding of one RPC: its template, method and request class."""

    template: PathTemplate
    method: MethodDescriptor
    request_class: type[Message]
    options: pb.options_pb2.RouteOptions

    @property
    def rpc(self) -> str:
        """The RPC's name, e.g. GetWorkspaceOverview."""
        return str(self.method.name)


def read_routes(service: str = "query") -> tuple[ReadRoute, ...]:
    """The GET bindings of one service, literal paths before templated ones."""
    module, _grpc, name = pb.SERVICE_MODULES[service]
    found = []
    for method in module.DESCRIPTOR.services_by_name[name].methods:
        rule = method.GetOptions().Extensions[annotations_pb2.http]
        for binding in (rule, *rule.additional_bindings):
            if binding.WhichOneof("pattern") == "get" and not method.server_streaming:
                found.append(
                    ReadRoute(
                        template=parse_template(binding.get),
                        method=method,
                        request_class=GetMessageClass(method.input_type),
                        options=method.GetOptions().Extensions[pb.options_pb2.route],
                    )
                )
    found.sort(key=lambda r: match_order_key(r.template))
    return tuple(found)


def _parameters(message: Descriptor) -> dict[str, tuple[FieldDescriptor, ...]]:
    """Parameter names (JSON and proto spellings) to the singular fields they set."""
    found: dict[str, tuple[FieldDescriptor, ...]] = {}
    for path in query_fields(message):
        if not path[-1].is_repeated:
            found[path[-1].json_name] = path
            found[path[-1].name] = path
    return found


def parse_scalar(field: FieldDescriptor, raw: str, name: str) -> object:
    """The typed value of one textual parameter; INVALID_ARGUMENT naming it if malformed."""
    try:
        return scalars.parse(field, raw)
    except scalars.ScalarError as exc:
        raise errors.invalid_argument(name, f"parameter '{name}' {exc}") from None


@dataclass(frozen=True)
class BoundRequest:
    """A request message ready for its RPC."""

    route: ReadRoute
    message: Message


class ReadRouter:
    """Finds the read route of a path and binds string parameters into its request."""

    def __init__(self, routes: tuple[ReadRoute, ...]) -> None:
        self.routes = routes
        self._fields = {id(r): _parameters(r.method.input_type) for r in routes}

    def bind(self, path: str, params: Mapping[str, str]) -> BoundRequest:
        """The bound request of path with params; NOT_FOUND for no such route, 400 for params."""
        given = dict(params)
        segments = path.strip().split("?", 1)[0].strip("/").split("/")
        for route in self.routes:
            values = self._match(route, segments, given)
            if values is not None:
                return BoundRequest(route, self._message(route, values, given))
        raise errors.not_found(f"route {path}")

    @staticmethod
    def _match(
        route: ReadRoute, segments: list[str], given: dict[str, str]
    ) -> dict[str, str] | None:
        """Path variables (field path -> text) when segments fit the template, else None."""
        template = route.template.segments
        if len(template) != len(segments):
            return None
        by_segment = {f"{{{v.field_path}}}": v.field_path for v in route.template.variables}
        pairs = list(zip(template, segments, strict=True))
        if any(p not in by_segment and p != s for p, s in pairs):
            return None
        values: dict[str, str] = {}
        for pattern, segment in pairs:
            field_path = by_segment.get(pattern)
            if field_path is None:
                continue
            placeholder = _PLACEHOLDER.match(segment)
            if placeholder:  # `:linkId` or `{linkId}`: the value comes from the parameters
                name = placeholder.group(1) or placeholder.group(2)
                if name not in (field_path, _camel(field_path)):
                    return None
                if name not in given:
                    raise errors.invalid_argument(name, f"parameter '{name}' is required")
                values[field_path] = given.pop(name)
            else:
                values[field_path] = segment
        return values

    def _message(self, route: ReadRoute, path: dict[str, str], given: dict[str, str]) -> Message:
        message = route.request_class()
        fields = self._fields[id(route)]
        for field_path, raw in path.items():
            leaf = message.DESCRIPTOR.fields_by_name[field_path]
            setattr(message, field_path, parse_scalar(leaf, raw, _camel(field_path)))
        for name, raw in given.items():
            chain = fields.get(name)
            if chain is None or chain[-1].name in path:
                raise errors.invalid_argument(name, f"unknown parameter '{name}'")
            if not isinstance(raw, str):
                raise errors.invalid_argument(name, f"parameter '{name}' must be a string")
            target = message
            for field in chain[:-1]:
                target = getattr(target, field.name)
            setattr(target, chain[-1].name, parse_scalar(chain[-1], raw, name))
        return message
