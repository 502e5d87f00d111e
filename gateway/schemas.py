"""JSON Schemas (OpenAPI 3.1 components) of protobuf messages and enums as the gateway emits."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

from services import field_rules
from services.contract.fields import is_map, is_message, is_optional_scalar

REF_PREFIX = "#/components/schemas/"
_OWN_PACKAGE = "linkpulse.v1."

_T = FieldDescriptor
SCALAR_SCHEMAS: dict[int, dict[str, Any]] = {
    _T.TYPE_DOUBLE: {"type": "number", "format": "double"},
    _T.TYPE_FLOAT: {"type": "number", "format": "float"},
    _T.TYPE_INT64: {"type": "integer", "format": "int64"},
    _T.TYPE_SINT64: {"type": "integer", "format": "int64"},
    _T.TYPE_SFIXED64: {"type": "integer", "format": "int64"},
    _T.TYPE_UINT64: {"type": "integer", "format": "uint64", "minimum": 0},
    _T.TYPE_FIXED64: {"type": "integer", "format": "uint64", "minimum": 0},
    _T.TYPE_INT32: {"type": "integer", "format": "int32"},
    _T.TYPE_SINT32: {"type": "integer", "format": "int32"},
    _T.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    _T.TYPE_UINT32: {"type": "integer", "format": "uint32", "minimum": 0},
    _T.TYPE_FIXED32: {"type": "integer", "format": "uint32", "minimum": 0},
    _T.TYPE_BOOL: {"type": "boolean"},
    _T.TYPE_STRING: {"type": "string"},
    _T.TYPE_BYTES: {"type": "string", "contentEncoding": "base64"},
}

# Well-known types have their own JSON forms; they are inlined, not made components.
WELL_KNOWN_SCHEMAS: dict[str, dict[str, Any]] = {
    "google.protobuf.Struct": {"type": "object", "additionalProperties": True},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array", "items": {}},
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?s$"},
    "google.protobuf.FieldMask": {"type": "string"},
    "google.protobuf.Empty": {"type": "object"},
    "google.protobuf.Any": {
        "type": "object",
        "properties": {"@type": {"type": "string"}},
        "required": ["@type"],
        "additionalProperties": True,
    },
    "google.protobuf.DoubleValue": {"type": ["number", "null"]},
    "google.protobuf.FloatValue": {"type": ["number", "null"]},
    "google.protobuf.Int64Value": {"type": ["integer", "null"], "format": "int64"},
    "google.protobuf.UInt64Value": {"type": ["integer", "null"], "format": "uint64"},
    "google.protobuf.Int32Value": {"type": ["integer", "null"], "format": "int32"},
    "google.protobuf.UInt32Value": {"type": ["integer", "null"], "format": "uint32"},
    "google.protobuf.BoolValue": {"type": ["boolean", "null"]},
    "google.protobuf.StringValue": {"type": ["string", "null"]},
    "google.protobuf.BytesValue": {"type": ["string", "null"], "contentEncoding": "base64"},
}


def constrained(schema: dict[str, Any], field: FieldDescriptor) -> dict[str, Any]:
    """schema of one value of field with the field's declared rules (bounds, values, required)."""
    rules = field_rules.of(field)
    if "$ref" in schema and rules.one_of:
        schema = {}
    if rules.HasField("minimum"):
        schema["minimum"] = max(rules.minimum, schema.get("minimum", rules.minimum))
    if rules.HasField("maximum"):
        schema["maximum"] = rules.maximum
    if rules.one_of:
        schema.update(type="string", enum=list(rules.one_of))
    elif rules.required and field.type == FieldDescriptor.TYPE_STRING:
        schema["minLength"] = 1
    if rules.default_value:
        schema["default"] = _typed(rules.default_value, field)
    if rules.examples:
        schema["examples"] = [_typed(example, field) for example in rules.examples]
    return schema


def _typed(text: str, field: FieldDescriptor) -> Any:
    """A documented value (written as text in the proto) as JSON of the field's type."""
    if field.type == FieldDescriptor.TYPE_BOOL:
        return text == "true"
    if field.cpp_type in _INTEGER_TYPES:
        return int(text)
    if field.cpp_type in _FLOAT_TYPES:
        return float(text)
    return text


_INTEGER_TYPES = frozenset(
    {
        FieldDescriptor.CPPTYPE_INT32,
        FieldDescriptor.CPPTYPE_INT64,
        FieldDescriptor.CPPTYPE_UINT32,
        FieldDescriptor.CPPTYPE_UINT64,
    }
)
_FLOAT_TYPES = frozenset({FieldDescriptor.CPPTYPE_FLOAT, FieldDescriptor.CPPTYPE_DOUBLE})


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """schema also admitting null (an unset `optional` field)."""
    if "type" not in schema:
        return {"anyOf": [schema, {"type": "null"}]}
    if "enum" in schema:
        schema["enum"] = [*schema["enum"], None]
    schema["type"] = [schema["type"], "null"]
    return schema


# A message schema variant: (full name, JSON keys are proto field names).
Variant = tuple[str, bool]


def _short_name(full_name: str) -> str:
    return full_name[len(_OWN_PACKAGE) :] if full_name.startswith(_OWN_PACKAGE) else full_name


def _names_differ(message: Descriptor, seen: set[str] | None = None) -> bool:
    """True if any field, here or in nested messages, has a JSON name unlike its proto name."""
    seen = set() if seen is None else seen
    if message.full_name in seen:
        return False
    seen.add(message.full_name)
    for field in message.fields:
        if not is_map(field) and field.json_name != field.name:
            return True
        target = field.message_type.fields_by_name["value"] if is_map(field) else field
        if is_message(target) and target.message_type.full_name not in WELL_KNOWN_SCHEMAS:
            if _names_differ(target.message_type, seen):
                return True
    return False


class SchemaRegistry:
    """Collects the messages and enums a document uses, then names and renders them once."""

    def __init__(self, comments: Mapping[str, str]) -> None:
        self._comments = comments
        self._messages: dict[Variant, Descriptor] = {}
        self._enums: dict[str, EnumDescriptor] = {}
        self._names: dict[Variant, str] | None = None

    def _variant(self, message: Descriptor, proto_names: bool) -> Variant:
        return (message.full_name, proto_names and _names_differ(message))

    def use(self, message: Descriptor, proto_names: bool = False) -> None:
        """Register message (and everything it refers to) in the given naming."""
        if message.full_name in WELL_KNOWN_SCHEMAS:
            return
        variant = self._variant(message, proto_names)
        if variant in self._messages:
            return
        if self._names is not None:
            raise RuntimeError(f"{message.full_name} registered after naming")
        self._messages[variant] = message
        for field in message.fields:
            target = field.message_type.fields_by_name["value"] if is_map(field) else field
            if target.type == FieldDescriptor.TYPE_ENUM:
                self.use_enum(target.enum_type)
            elif is_message(target):
                self.use(target.message_type, proto_names)

    def use_enum(self, enum: EnumDescriptor) -> None:
        """Register an enum."""
        self._enums.setdefault(enum.full_name, enum)

    def _name_all(self) -> dict[Variant, str]:
        if self._names is None:
            names: dict[Variant, str] = {}
            for full_name, proto_names in self._messages:
                name = _short_name(full_name)
                if proto_names and (full_name, False) in self._messages:
                    name += "_proto_names"
                names[(full_name, proto_names)] = name
            self._names = names
        return self._names

    def ref(self, message: Descriptor, proto_names: bool = False) -> dict[str, Any]:
        """A `$ref` to message's schema in the given naming (inline for well-known types)."""
        if message.full_name in WELL_KNOWN_SCHEMAS:
            return dict(WELL_KNOWN_SCHEMAS[message.full_name])
        variant = self._variant(message, proto_names)
        names = self._name_all()
        if variant not in names:
            raise KeyError(f"{message.full_name} was not registered")
        return {"$ref": REF_PREFIX + names[variant]}

    def enum_ref(self, enum: EnumDescriptor) -> dict[str, Any]:
        """A `$ref` to an enum's schema."""
        if enum.full_name not in self._enums:
            raise KeyError(f"{enum.full_name} was not registered")
        return {"$ref": REF_PREFIX + _short_name(enum.full_name)}

    def single_schema(self, field: FieldDescriptor, proto_names: bool = False) -> dict[str, Any]:
        """Schema of one value of field (an element if repeated), with its declared rules."""
        if field.type == FieldDescriptor.TYPE_ENUM:
            return self.enum_ref(field.enum_type)
        if is_message(field):
            return self.ref(field.message_type, proto_names)
        return constrained(dict(SCALAR_SCHEMAS[field.type]), field)

    def field_schema(self, field: FieldDescriptor, proto_names: bool = False) -> dict[str, Any]:
        """Schema of field as it appears in JSON, with its proto comment as description."""
        if is_map(field):
            value = field.message_type.fields_by_name["value"]
            schema: dict[str, Any] = {
                "type": "object",
                "additionalProperties": self.single_schema(value, proto_names),
            }
        elif field.is_repeated:
            schema = {"type": "array", "items": self.single_schema(field, proto_names)}
        elif is_optional_scalar(field):
            schema = _nullable(self.single_schema(field, proto_names))
        else:
            schema = self.single_schema(field, proto_names)
        description = self._comments.get(field.full_name)
        if description:
            schema["description"] = description
        return schema

    def _message_schema(self, message: Descriptor, proto_names: bool) -> dict[str, Any]:
        properties = {
            (field.name if proto_names else field.json_name): self.field_schema(field, proto_names)
            for field in message.fields
        }
        schema: dict[str, Any] = {"type": "object", "properties": properties}
        required = [
            field.name if proto_names else field.json_name
            for field in message.fields
            if field_rules.of(field).required
        ]
        if required:
            schema["required"] = required
        description = self._comments.get(message.full_name)
        if description:
            schema["description"] = description
        return schema

    def _enum_schema(self, enum: EnumDescriptor) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "string", "enum": [v.name for v in enum.values]}
        description = self._comments.get(enum.full_name)
        if description:
            schema["description"] = description
        return schema

    def components(self) -> dict[str, dict[str, Any]]:
        """Every registered schema by component name, sorted."""
        names = self._name_all()
        schemas = {
            names[variant]: self._message_schema(message, variant[1])
            for variant, message in self._messages.items()
        }
        for full_name, enum in self._enums.items():
            schemas[_short_name(full_name)] = self._enum_schema(enum)
        return dict(sorted(schemas.items()))
