"""Facts about protobuf field descriptors that binding, JSON and OpenAPI share."""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache

from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from services import protos

INT32_TYPES = frozenset(
    {FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SFIXED32}
)
UINT32_TYPES = frozenset({FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32})
INT64_TYPES = frozenset(
    {FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_SFIXED64}
)
UINT64_TYPES = frozenset({FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64})
INTEGER_TYPES = INT32_TYPES | UINT32_TYPES | INT64_TYPES | UINT64_TYPES
LONG_TYPES = INT64_TYPES | UINT64_TYPES
FLOAT_TYPES = frozenset({FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT})

# Inclusive bounds of each integer type.
INTEGER_BOUNDS: dict[int, tuple[int, int]] = {
    **{t: (-(2**31), 2**31 - 1) for t in INT32_TYPES},
    **{t: (0, 2**32 - 1) for t in UINT32_TYPES},
    **{t: (-(2**63), 2**63 - 1) for t in INT64_TYPES},
    **{t: (0, 2**64 - 1) for t in UINT64_TYPES},
}


def is_message(field: FieldDescriptor) -> bool:
    """True for message-typed fields (maps included)."""
    return field.type in (FieldDescriptor.TYPE_MESSAGE, FieldDescriptor.TYPE_GROUP)


def is_map(field: FieldDescriptor) -> bool:
    """True for `map<K, V>` fields."""
    return (
        is_message(field)
        and field.message_type is not None
        and field.message_type.GetOptions().map_entry
    )


@lru_cache(maxsize=1024)
def _optional_names(message: Descriptor) -> frozenset[str]:
    proto = descriptor_pb2.DescriptorProto()
    message.CopyToProto(proto)
    return frozenset(f.name for f in proto.field if f.proto3_optional)


def is_optional_scalar(field: FieldDescriptor) -> bool:
    """True for a proto3 `optional` scalar field: unset, its JSON value is null."""
    # upb's OneofDescriptor has no is_synthetic; the file's own declaration says it.
    return (
        field.containing_oneof is not None
        and not is_message(field)
        and field.name in _optional_names(field.containing_type)
    )


def is_scalar(field: FieldDescriptor) -> bool:
    """True for fields holding a number, bool, string, bytes or enum."""
    return not is_message(field)


def resolve_field_path(message: Descriptor, field_path: str) -> tuple[FieldDescriptor, ...]:
    """The fields named by a dotted path from message; every step but the last a message."""
    names = field_path.split(".")
    fields: list[FieldDescriptor] = []
    current: Descriptor = message
    for position, name in enumerate(names):
        field = current.fields_by_name.get(name)
        if field is None:
            raise ValueError(f"{message.full_name} has no field {field_path!r}")
        fields.append(field)
        if position == len(names) - 1:
            break
        if field.is_repeated or not is_message(field):
            raise ValueError(
                f"{message.full_name}: {field_path!r} must go through singular message fields"
            )
        current = field.message_type
    return tuple(fields)


def is_flattened(field: FieldDescriptor) -> bool:
    """True for a message field marked `(linkpulse.v1.flatten)`: its fields bind at top level."""
    return bool(field.GetOptions().Extensions[protos.options_pb2.flatten])


def query_fields(
    message: Descriptor, prefix: tuple[FieldDescriptor, ...] = ()
) -> Iterator[tuple[FieldDescriptor, ...]]:
    """Paths to the scalar fields a query string can set: through flattened message fields."""
    for field in message.fields:
        if is_scalar(field):
            yield (*prefix, field)
        elif not field.is_repeated and not is_map(field) and is_flattened(field):
            yield from query_fields(field.message_type, (*prefix, field))
