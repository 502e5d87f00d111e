"""The request fields an RPC honours, as its `(linkpulse.v1.route).params` declare them, and the
refusal of any other field a caller sets."""

from __future__ import annotations

from collections import defaultdict

from google.protobuf.descriptor import Descriptor, MethodDescriptor
from google.protobuf.message import Message

from services import errors, protos
from services.contract.fields import is_flattened, is_message


def _parameter_messages(request: Descriptor) -> list[Descriptor]:
    """request and the messages of its flattened fields, whose fields are parameters too."""
    return [
        request,
        *(
            f.message_type
            for f in request.fields
            if is_message(f) and not f.is_repeated and is_flattened(f)
        ),
    ]


def param_groups(message: Descriptor) -> dict[str, frozenset[str]]:
    """Group name -> names of the fields marked `(linkpulse.v1.param_group)`, flattened ones too."""
    groups: dict[str, set[str]] = defaultdict(set)
    for owner in _parameter_messages(message):
        for field in owner.fields:
            group = field.GetOptions().Extensions[protos.options_pb2.param_group]
            if group:
                groups[group].add(field.name)
    return {name: frozenset(fields) for name, fields in groups.items()}


def honoured_fields(
    method: MethodDescriptor, options: protos.options_pb2.RouteOptions
) -> frozenset[str] | None:
    """Names of the request fields the RPC honours; None when it does not declare them (all).

    The fields of a flattened message field count as the request's own. ValueError for a
    declared name that is neither such a field nor a group of them."""
    if not options.HasField("params"):
        return None
    request = method.input_type
    groups = param_groups(request)
    fields = {f.name for owner in _parameter_messages(request) for f in owner.fields}
    names: set[str] = set()
    for name in options.params.honoured:
        if name in groups:
            names |= groups[name]
        elif name in fields:
            names.add(name)
        else:
            raise ValueError(
                f"{method.full_name}: honoured parameter {name!r} is neither a field of"
                f" {request.full_name} nor a group of its fields"
            )
    return frozenset(names)


def refuse_unhonoured(
    message: Message, honoured: frozenset[str] | None, proto_field_names: bool = False
) -> None:
    """INVALID_ARGUMENT naming the first field set in message (or in a flattened field of it)
    that is not honoured."""
    if honoured is None:
        return
    for field, value in message.ListFields():
        if field.name in honoured:
            continue
        if is_message(field) and not field.is_repeated and is_flattened(field):
            refuse_unhonoured(value, honoured, proto_field_names)
            continue
        name = field.name if proto_field_names else field.json_name
        raise errors.invalid_argument(name, f"parameter '{name}' is not supported by this route")
