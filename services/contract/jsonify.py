"""Protobuf messages to JSON-ready dicts: defaults included, unset `optional` scalars as null,
64-bit integers as numbers."""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from services.contract.fields import LONG_TYPES, is_map, is_message, is_optional_scalar

# Well-known types whose JSON form is not an object of their fields.
_LONG_WRAPPERS = frozenset({"google.protobuf.Int64Value", "google.protobuf.UInt64Value"})
_WELL_KNOWN_PREFIX = "google.protobuf."
# Well-known types holding any JSON value, whose numbers are all doubles.
_JSON_VALUES = frozenset({"google.protobuf.Struct", "google.protobuf.Value"})
# Doubles below this are whole numbers exactly.
_EXACT = 2**53


def message_to_dict(message: Message, *, proto_field_names: bool = False) -> dict[str, Any]:
    """The ProtoJSON object of message with every field printed (an unset `optional` scalar as
    null) and 64-bit integers unquoted."""
    data = json_format.MessageToDict(
        message,
        always_print_fields_with_no_presence=True,
        preserving_proto_field_name=proto_field_names,
    )
    _unquote_message(message.DESCRIPTOR, data, proto_field_names)
    return data


def _unquote_value(field: FieldDescriptor, value: Any, proto_field_names: bool) -> Any:
    if field.type in LONG_TYPES:
        return int(value) if isinstance(value, str) else value
    if is_message(field):
        full_name = field.message_type.full_name
        if full_name in _LONG_WRAPPERS:
            return int(value) if isinstance(value, str) else value
        if full_name in _JSON_VALUES:
            return _whole_numbers(value)
        if not full_name.startswith(_WELL_KNOWN_PREFIX) and isinstance(value, dict):
            _unquote_message(field.message_type, value, proto_field_names)
    return value


def _whole_numbers(value: Any) -> Any:
    """value with the whole doubles of a Struct as integers (a count reads 6, not 6.0)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < _EXACT:
        return int(value)
    if isinstance(value, dict):
        return {k: _whole_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_whole_numbers(v) for v in value]
    return value


def _unquote_message(descriptor: Descriptor, data: dict[str, Any], proto_field_names: bool) -> None:
    """Replace, in place, the decimal strings ProtoJSON uses for 64-bit integers by numbers, and
    add the unset `optional` scalars (which MessageToDict leaves out) as None."""
    for field in descriptor.fields:
        key = field.name if proto_field_names else field.json_name
        if key not in data:
            if is_optional_scalar(field):
                data[key] = None
            continue
        if data[key] is None:
            continue
        value = data[key]
        if is_map(field):
            value_field = field.message_type.fields_by_name["value"]
            data[key] = {
                k: _unquote_value(value_field, v, proto_field_names) for k, v in value.items()
            }
        elif field.is_repeated:
            data[key] = [_unquote_value(field, item, proto_field_names) for item in value]
        else:
            data[key] = _unquote_value(field, value, proto_field_names)
