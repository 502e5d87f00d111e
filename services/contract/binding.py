"""Binding of path variables, query parameters and JSON bodies into request messages.

Every refusal is an INVALID_ARGUMENT services.errors.ApiError naming the parameter at fault."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import grpc
import orjson
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from services.contract import scalars
from services.contract.fields import (
    INTEGER_BOUNDS,
    is_map,
    is_message,
    query_fields,
    resolve_field_path,
)
from services.contract.plain_bodies import bind_plain
from services.contract.routes import Route
from services.contract.scalars import expectation
from services.errors import ApiError, invalid_argument

_PARSE_FIELD = re.compile(r"Failed to parse (\w+) field")
_AT_FIELD = re.compile(r" at \w+((?:\.\w+)+)")
_NO_FIELD = re.compile(r'has no field named "([^"]+)"')


@dataclass(frozen=True)
class FieldBinding:
    """A query parameter: its canonical (JSON) name and the fields it sets from the request root."""

    name: str
    fields: tuple[FieldDescriptor, ...]

    @property
    def leaf(self) -> FieldDescriptor:
        """The scalar field the parameter sets."""
        return self.fields[-1]

    @property
    def proto_name(self) -> str:
        """The leaf's proto (snake_case) name, also accepted as the parameter name."""
        return self.fields[-1].name


def _dotted(fields: tuple[FieldDescriptor, ...]) -> str:
    return ".".join(f.name for f in fields)


def parse_scalar(field: FieldDescriptor, raw: str, where: str, name: str) -> Any:
    """The typed value of one textual parameter; INVALID_ARGUMENT `{where} '{name}' …` if not."""
    try:
        return scalars.parse(field, raw)
    except scalars.ScalarError as exc:
        raise invalid_argument(name, f"{where} '{name}' {exc}") from None


def assign(message: Message, fields: tuple[FieldDescriptor, ...], value: Any) -> None:
    """Set (or, for a repeated leaf, append) value at the field path fields of message."""
    target = message
    for field in fields[:-1]:
        target = getattr(target, field.name)
    leaf = fields[-1]
    if leaf.is_repeated:
        getattr(target, leaf.name).append(value)
    else:
        setattr(target, leaf.name, value)


class RequestBinder:
    """Builds one route's request message from path variables, query parameters and body."""

    def __init__(self, route: Route) -> None:
        self.route = route
        body_prefix = "" if route.body in ("", "*") else route.body
        path_bound = {_dotted(fields) for fields in route.path_fields.values()}
        parameters: list[FieldBinding] = []
        by_name: dict[str, FieldBinding] = {}
        set_by_path: dict[str, str] = {}
        candidates = () if route.body == "*" else query_fields(route.method.input_type)
        for fields in candidates:
            dotted = _dotted(fields)
            if body_prefix and (dotted == body_prefix or dotted.startswith(body_prefix + ".")):
                continue
            binding = FieldBinding(name=fields[-1].json_name, fields=fields)
            names = {binding.name, binding.proto_name}
            if dotted in path_bound:
                set_by_path.update(dict.fromkeys(names, dotted))
                continue
            for name in names:
                if name in by_name:
                    raise ValueError(f"{route.key}: query parameter {name!r} binds two fields")
                by_name[name] = binding
            parameters.append(binding)
        self.parameters: tuple[FieldBinding, ...] = tuple(parameters)
        self._by_name = by_name
        self._set_by_path = set_by_path

    def accepts(self, name: str) -> bool:
        """True if name is a query parameter of this route."""
        return name in self._by_name

    def parameter(self, name: str) -> FieldBinding | None:
        """The query parameter of that name (JSON or proto spelling); None if there is none."""
        return self._by_name.get(name)

    def bind(
        self,
        path_params: Mapping[str, Any],
        query: Iterable[tuple[str, str]],
        body: bytes | None = None,
    ) -> Message:
        """The request message; INVALID_ARGUMENT naming the parameter at fault."""
        message = self.route.request_class()
        if self.route.body and body:
            self._bind_body(message, body)
        given: set[str] = set()
        for name, raw in query:
            binding = self._by_name.get(name)
            if binding is None:
                if name in self._set_by_path:
                    raise invalid_argument(name, f"query parameter '{name}' is set by the path")
                raise invalid_argument(name, f"unknown query parameter '{name}'")
            if not binding.leaf.is_repeated:
                if binding.name in given:
                    raise invalid_argument(
                        name, f"query parameter '{name}' is given more than once"
                    )
                given.add(binding.name)
            assign(
                message, binding.fields, parse_scalar(binding.leaf, raw, "query parameter", name)
            )
        for param, fields in self.route.path_fields.items():
            if param in path_params:
                value = parse_scalar(fields[-1], str(path_params[param]), "path parameter", param)
                assign(message, fields, value)
        return message

    def _bind_body(self, message: Message, body: bytes) -> None:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise _body_invalid(f"request body is not valid JSON: {exc}") from None
        target: Message = message
        if self.route.body != "*":
            fields = resolve_field_path(message.DESCRIPTOR, self.route.body)
            for field in fields[:-1]:
                target = getattr(target, field.name)
            data = {fields[-1].name: data}
        elif not isinstance(data, dict):
            raise _body_invalid("request body must be a JSON object")
        try:
            if not bind_plain(data, target):
                json_format.ParseDict(data, target)
        except json_format.ParseError as exc:
            raise _body_error(target.DESCRIPTOR, str(exc)) from None
        except (TypeError, ValueError, RecursionError):
            raise _body_invalid("request body does not match the request message") from None


def _body_invalid(message: str) -> ApiError:
    """INVALID_ARGUMENT of the body as a whole (no one field at fault)."""
    return ApiError(grpc.StatusCode.INVALID_ARGUMENT, "invalid_argument", message)


def _body_error(root: Descriptor, text: str) -> ApiError:
    """A readable INVALID_ARGUMENT from json_format's ParseError text, naming the field at fault."""
    unknown = _NO_FIELD.search(text)
    if unknown:
        name = unknown.group(1)
        return invalid_argument(name, f"unknown field '{name}' in request body")
    names = _PARSE_FIELD.findall(text)
    if not names:
        at = _AT_FIELD.search(text)
        names = at.group(1).lstrip(".").split(".") if at else []
    leaf = _field_at(root, names)
    if leaf is not None:
        path = ".".join(names)
        if "out of range" in text and leaf.type in INTEGER_BOUNDS:
            low, high = INTEGER_BOUNDS[leaf.type]
            return invalid_argument(
                path, f"body field '{path}' must be an integer between {low} and {high}"
            )
        if leaf.is_repeated and not is_map(leaf):
            return invalid_argument(path, f"body field '{path}' must be an array")
        return invalid_argument(path, f"body field '{path}' {expectation(leaf)}")
    first_line = text.splitlines()[0].strip() if text.strip() else "invalid request body"
    return _body_invalid(f"invalid request body: {first_line}")


def _field_at(root: Descriptor, names: list[str]) -> FieldDescriptor | None:
    """The field a ParseError names, through repeated fields too; None if it names none."""
    field: FieldDescriptor | None = None
    current: Descriptor | None = root
    for name in names:
        if current is None:
            return None
        field = current.fields_by_name.get(name) or next(
            (f for f in current.fields if f.json_name == name), None
        )
        if field is None:
            return None
        current = field.message_type if is_message(field) else None
    return field
