"""Constraints on request fields as the protos declare them (`(linkpulse.v1.field)`)."""

from __future__ import annotations

import functools

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from services import errors, protos


def of(field: FieldDescriptor) -> protos.options_pb2.FieldRules:
    """The rules declared on field (empty when none are)."""
    return field.GetOptions().Extensions[protos.options_pb2.field]


@functools.cache
def _field(message: Descriptor, name: str) -> FieldDescriptor:
    field = message.fields_by_name.get(name)
    if field is None:
        raise KeyError(f"{message.full_name} has no field {name!r}")
    return field


def bounds(message: Descriptor, name: str) -> tuple[int, int]:
    """The declared inclusive (minimum, maximum) of an integer field; KeyError if either is not."""
    rules = of(_field(message, name))
    if not (rules.HasField("minimum") and rules.HasField("maximum")):
        raise KeyError(f"{message.full_name}.{name} declares no minimum and maximum")
    return rules.minimum, rules.maximum


def minimum(message: Descriptor, name: str) -> int:
    """The declared minimum of an integer field."""
    return bounds(message, name)[0]


def maximum(message: Descriptor, name: str) -> int:
    """The declared maximum of an integer field."""
    return bounds(message, name)[1]


def one_of(message: Descriptor, name: str) -> tuple[str, ...]:
    """The values a string field is declared to take."""
    values = tuple(of(_field(message, name)).one_of)
    if not values:
        raise KeyError(f"{message.full_name}.{name} declares no values")
    return values


def is_required(message: Descriptor, name: str) -> bool:
    """True if the field is declared required."""
    return of(_field(message, name)).required


def check_between(
    value: int, message: Descriptor, name: str, label: str | None = None, high: int | None = None
) -> int:
    """value if within the field's declared bounds (high lowers the maximum); else 400."""
    low, declared_high = bounds(message, name)
    top = declared_high if high is None else min(high, declared_high)
    if not low <= value <= top:
        shown = label or name
        raise errors.invalid_argument(shown, f"{shown} must be between {low} and {top}")
    return value
