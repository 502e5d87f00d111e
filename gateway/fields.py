"""Facts about protobuf field descriptors (in services.rpc.fields, shared with the workers)."""

from services.rpc.fields import (
    FLOAT_TYPES,
    INT32_TYPES,
    INT64_TYPES,
    INTEGER_BOUNDS,
    INTEGER_TYPES,
    LONG_TYPES,
    UINT32_TYPES,
    UINT64_TYPES,
    is_map,
    is_message,
    is_scalar,
    resolve_field_path,
)

__all__ = [
    "FLOAT_TYPES",
    "INT32_TYPES",
    "INT64_TYPES",
    "INTEGER_BOUNDS",
    "INTEGER_TYPES",
    "LONG_TYPES",
    "UINT32_TYPES",
    "UINT64_TYPES",
    "is_map",
    "is_message",
    "is_scalar",
    "resolve_field_path",
]
