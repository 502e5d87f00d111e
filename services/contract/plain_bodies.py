"""A fast path for JSON bodies made only of plain values: strings, integers (numbers, or decimal
strings as ProtoJSON writes 64-bit ones), booleans, nested objects and arrays of them, each under
its field's JSON or proto name.

`json_format.ParseDict` costs about 50 µs per event of a batch; building the message from
keyword arguments costs a few. Whatever is not plain (a number as a string, a float, null, an
enum, a map, a well-known type, a oneof, bytes, a name given twice, an unknown name, a value out
of range) is left to ParseDict, which accepts the looser forms and names what is wrong: for the
bodies this path takes, both build the same message.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from services.contract.fields import INTEGER_BOUNDS, is_map, is_message

_STRING = FieldDescriptor.TYPE_STRING
_BOOL = FieldDescriptor.TYPE_BOOL
_WELL_KNOWN = "google.protobuf."
_DECIMAL = re.compile(r"-?(?:0|[1-9][0-9]{0,19})\Z")

# A field as this path reads it: (proto name, kind, integer bounds, message plan or None).
# Kinds: "s" string, "i" integer, "b" bool, "m" message.
_Field = tuple[str, str, tuple[int, int], "_Plan | None", bool]
_Plan = dict[str, _Field]


class _NotPlain(Exception):
    """The body holds something only ParseDict reads."""


@lru_cache(maxsize=256)
def _plan(descriptor: Descriptor, within: frozenset[str] = frozenset()) -> _Plan | None:
    """JSON and proto names -> how to read the field; None when a field is not plain (or the
    message nests itself, like a filter tree: those are ParseDict's)."""
    if descriptor.full_name in within:
        return None
    within = within | {descriptor.full_name}
    plan: _Plan = {}
    for field in descriptor.fields:
        oneof = field.containing_oneof
        if oneof is not None and len(oneof.fields) > 1:
            return None  # a real oneof (ParseDict refuses two of its fields)
        repeated = field.is_repeated
        nested: _Plan | None = None
        if field.type == _STRING:
            kind = "s"
        elif field.type == _BOOL:
            kind = "b"
        elif field.type in INTEGER_BOUNDS:
            kind = "i"
        elif is_message(field) and not is_map(field):
            if field.message_type.full_name.startswith(_WELL_KNOWN):
                return None
            nested = _plan(field.message_type, within)
            if nested is None:
                return None
            kind = "m"
        else:
            return None
        entry: _Field = (field.name, kind, INTEGER_BOUNDS.get(field.type, (0, 0)), nested, repeated)
        plan[field.json_name] = entry
        plan[field.name] = entry
    return plan


def _value(entry: _Field, value: Any) -> Any:
    _, kind, (low, high), nested, _ = entry
    if kind == "s" and type(value) is str:
        return value
    if kind == "i":
        if type(value) is str and _DECIMAL.match(value):
            value = int(value)
        if type(value) is int and low <= value <= high:
            return value
    if kind == "b" and type(value) is bool:
        return value
    if kind == "m" and type(value) is dict and nested is not None:
        return _kwargs(nested, value)
    raise _NotPlain


def _kwargs(plan: _Plan, data: dict[str, Any]) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        entry = plan.get(key)
        if entry is None or entry[0] in kwargs:
            raise _NotPlain  # unknown, or given under both names
        if entry[4]:
            if type(value) is not list:
                raise _NotPlain
            kwargs[entry[0]] = [_value(entry, item) for item in value]
        else:
            kwargs[entry[0]] = _value(entry, value)
    return kwargs


def bind_plain(data: dict[str, Any], message: Message) -> bool:
    """Merge data into message when it is plain; False (message untouched) when it is not."""
    plan = _plan(message.DESCRIPTOR)
    if plan is None:
        return False
    try:
        kwargs = _kwargs(plan, data)
    except _NotPlain:
        return False
    message.MergeFrom(type(message)(**kwargs))
    return True
