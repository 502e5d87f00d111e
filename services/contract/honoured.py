"""The request fields an RPC honours, as its `(linkpulse.v1.route).params` declare them, and the
refusal of any other field a caller sets."""

from __future__ import annotations

from collections import defaultdict

from google.protobuf.descriptor import Descriptor, MethodDescriptor
from google.protobuf.message import Message

from services import errors, protos


def param_groups(message: Descriptor) -> dict[str, frozenset[str]]:
    """Group name -> names of the message's fields marked `(linkpulse.v1.param_group)`."""
    groups: dict[str, set[str]] = defaultdict(set)
    for field in message.fields:
        group = field.GetOptions().Extensions[protos.options_pb2.param_group]
        if group:
            groups[group].add(field.name)
    return {name: frozenset(fields) for name, fields in groups.items()}


def honoured_fields(
    method: MethodDescriptor, options: protos.options_pb2.RouteOptions
) -> frozenset[str] | None:
    """Names of the request fields the RPC honours; None when it does not declare them (all).

    ValueError for a declared name that is neither a field of the request nor a group of them."""
    if not options.HasField("params"):
        return None
    request = method.input_type
    groups = param_groups(request)
    names: set[str] = set()
    for name in options.params.honoured:
        if name in groups:
            names |= groups[name]
        elif name in request.fields_by_name:
            names.add(name)
        else:
            raise ValueError(
                f"{method.full_name}: honoured parameter {name!r} is neither a field of"
                f" {request.full_name} nor a group of its fields"
            )
    return frozenset(names)


def parameter_name(field_name: str, request: Descriptor, proto_field_names: bool) -> str:
    """The name callers give the field: its JSON name, or its proto name on snake_case routes."""
    return field_name if proto_field_names else request.fields_by_name[field_name].json_name


def refuse_unhonoured(
    message: Message, honoured: frozenset[str] | None, proto_field_names: bool = False
) -> None:
    """INVALID_ARGUMENT naming the first field set in message that is not honoured."""
    if honoured is None:
        return
    for field, _value in message.ListFields():
        if field.name not in honoured:
            name = parameter_name(field.name, message.DESCRIPTOR, proto_field_names)
            message_text = f"parameter '{name}' is not supported by this route"
            raise errors.invalid_argument(name, message_text)
