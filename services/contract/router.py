"""A read route of the contract named by its path, with string parameters, as its request message.

Batch items name a GET route of the Analytics API (`/api/analytics/workspace/overview`,
`/api/analytics/42/summary` or `/api/analytics/:linkId/summary` with `linkId` among the
parameters) and give its query parameters as strings; this binds them with the route's own
binder, the way the gateway binds a query string, so workers need no gateway.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from google.protobuf.message import Message

from services import errors
from services.contract.binding import RequestBinder, assign, parse_scalar
from services.contract.routes import Route

_PLACEHOLDER = re.compile(r"(?::([A-Za-z_]\w*)|\{([A-Za-z_]\w*)\})\Z")
_WHERE = "parameter"


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


@dataclass(frozen=True)
class BoundRequest:
    """A request message ready for its route's RPC."""

    route: Route
    message: Message


class ReadRouter:
    """Finds the read route of a path and binds string parameters into its request."""

    def __init__(self, binders: Sequence[RequestBinder]) -> None:
        self.binders = tuple(binders)

    @property
    def routes(self) -> tuple[Route, ...]:
        """The routes matched, in match order."""
        return tuple(binder.route for binder in self.binders)

    def bind(self, path: str, params: Mapping[str, str], body: bytes | None = None) -> BoundRequest:
        """The bound request of path with params (or, for a route taking one, the JSON body);
        NOT_FOUND for no such route, 400 for params or body."""
        given = dict(params)
        segments = path.strip().split("?", 1)[0].strip("/").split("/")
        for binder in self.binders:
            values = self._match(binder.route, segments, given)
            if values is None:
                continue
            if binder.route.body:
                if given or values:
                    name = next(iter(given), "params")
                    raise errors.invalid_argument(name, "this route takes a body, not parameters")
                return BoundRequest(binder.route, binder.bind({}, (), body or b"{}"))
            if body is not None:
                raise errors.invalid_argument("", "this route takes parameters, not a body")
            return BoundRequest(binder.route, self._message(binder, values, given))
        raise errors.not_found(f"route {path}")

    @staticmethod
    def _match(route: Route, segments: list[str], given: dict[str, str]) -> dict[str, str] | None:
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

    @staticmethod
    def _message(binder: RequestBinder, path: dict[str, str], given: dict[str, str]) -> Message:
        message = binder.route.request_class()
        for field_path, raw in path.items():
            leaf = message.DESCRIPTOR.fields_by_name[field_path]
            assign(message, (leaf,), parse_scalar(leaf, raw, _WHERE, _camel(field_path)))
        for name, raw in given.items():
            binding = binder.parameter(name)
            # A batch gives one string per parameter: repeated fields are not parameters here.
            if binding is None or binding.leaf.is_repeated or binding.leaf.name in path:
                raise errors.invalid_argument(name, f"unknown parameter '{name}'")
            if not isinstance(raw, str):
                raise errors.invalid_argument(name, f"parameter '{name}' must be a string")
            assign(message, binding.fields, parse_scalar(binding.leaf, raw, _WHERE, name))
        return message
