"""Textual parameter values to typed protobuf field values (query strings, batch items)."""

from __future__ import annotations

import base64
import binascii
import math
import re
from typing import Any

from google.protobuf.descriptor import FieldDescriptor

from services.contract.fields import FLOAT_TYPES, INTEGER_BOUNDS, INTEGER_TYPES, is_map, is_message

_INTEGER = re.compile(r"[+-]?[0-9]+\Z")
_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?\Z")
_TRUE = frozenset({"true", "1"})
_FALSE = frozenset({"false", "0"})


class ScalarError(ValueError):
    """A text that is not a value of the field; its message says what it must be."""


def expectation(field: FieldDescriptor) -> str:
    """What a value of field must look like, e.g. `must be an integer`."""
    if field.type in INTEGER_TYPES:
        return "must be an integer"
    if field.type in FLOAT_TYPES:
        return "must be a number"
    if field.type == FieldDescriptor.TYPE_BOOL:
        return "must be true or false"
    if field.type == FieldDescriptor.TYPE_ENUM:
        return "must be one of " + ", ".join(v.name for v in field.enum_type.values)
    if field.type == FieldDescriptor.TYPE_BYTES:
        return "must be base64"
    if is_map(field):
        value = field.message_type.fields_by_name["value"]
        return f"must be an object with {_noun(value)} values"
    if is_message(field):
        return "must be an object"
    return "must be a string"


def _noun(field: FieldDescriptor) -> str:
    if field.type in INTEGER_TYPES:
        return "integer"
    if field.type in FLOAT_TYPES:
        return "number"
    if field.type == FieldDescriptor.TYPE_BOOL:
        return "boolean"
    if is_message(field):
        return "object"
    return "string"


def parse(field: FieldDescriptor, raw: str) -> Any:
    """The typed value of raw for a scalar field; ScalarError saying what it must be."""
    kind = field.type
    if kind == FieldDescriptor.TYPE_STRING:
        return raw
    if kind in INTEGER_TYPES:
        if not _INTEGER.match(raw):
            raise ScalarError(expectation(field))
        value = int(raw)
        low, high = INTEGER_BOUNDS[kind]
        if not low <= value <= high:
            raise ScalarError(f"must be an integer between {low} and {high}")
        return value
    if kind in FLOAT_TYPES:
        if not _NUMBER.match(raw) or math.isinf(float(raw)):
            raise ScalarError(expectation(field))
        return float(raw)
    if kind == FieldDescriptor.TYPE_BOOL:
        lowered = raw.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ScalarError(expectation(field))
    if kind == FieldDescriptor.TYPE_ENUM:
        value_by_name = field.enum_type.values_by_name.get(raw)
        if value_by_name is not None:
            return value_by_name.number
        if _INTEGER.match(raw) and int(raw) in field.enum_type.values_by_number:
            return int(raw)
        raise ScalarError(expectation(field))
    if kind == FieldDescriptor.TYPE_BYTES:
        try:
            padded = raw + "=" * (-len(raw) % 4)
            return base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
        except (binascii.Error, ValueError):
            raise ScalarError(expectation(field)) from None
    raise ScalarError("cannot be bound")
