"""Proto comments by element full name, read from the descriptor set compiled with source info."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from google.protobuf import descriptor_pb2

logger = logging.getLogger(__name__)

# Field numbers of FileDescriptorProto / DescriptorProto / ... used in SourceCodeInfo paths.
_FILE_MESSAGE, _FILE_ENUM, _FILE_SERVICE = 4, 5, 6
_MESSAGE_FIELD, _MESSAGE_NESTED, _MESSAGE_ENUM = 2, 3, 4
_ENUM_VALUE, _SERVICE_METHOD = 2, 2

LocationPath = tuple[int, ...]


def _enums(
    enums: Sequence[descriptor_pb2.EnumDescriptorProto],
    path: LocationPath,
    scope: str,
    out: dict[LocationPath, str],
) -> None:
    for index, enum in enumerate(enums):
        enum_path = (*path, index)
        full_name = f"{scope}{enum.name}"
        out[enum_path] = full_name
        for value_index, value in enumerate(enum.value):
            out[(*enum_path, _ENUM_VALUE, value_index)] = f"{full_name}.{value.name}"


def _messages(
    messages: Sequence[descriptor_pb2.DescriptorProto],
    path: LocationPath,
    scope: str,
    out: dict[LocationPath, str],
) -> None:
    for index, message in enumerate(messages):
        message_path = (*path, index)
        full_name = f"{scope}{message.name}"
        out[message_path] = full_name
        for field_index, field in enumerate(message.field):
            out[(*message_path, _MESSAGE_FIELD, field_index)] = f"{full_name}.{field.name}"
        _messages(message.nested_type, (*message_path, _MESSAGE_NESTED), f"{full_name}.", out)
        _enums(message.enum_type, (*message_path, _MESSAGE_ENUM), f"{full_name}.", out)


def _element_names(file: descriptor_pb2.FileDescriptorProto) -> dict[LocationPath, str]:
    """SourceCodeInfo path -> full name of every message, field, enum, value, service, method."""
    scope = f"{file.package}." if file.package else ""
    out: dict[LocationPath, str] = {}
    _messages(file.message_type, (_FILE_MESSAGE,), scope, out)
    _enums(file.enum_type, (_FILE_ENUM,), scope, out)
    for index, service in enumerate(file.service):
        out[(_FILE_SERVICE, index)] = f"{scope}{service.name}"
        for method_index, method in enumerate(service.method):
            path = (_FILE_SERVICE, index, _SERVICE_METHOD, method_index)
            out[path] = f"{scope}{service.name}.{method.name}"
    return out


def clean_comment(text: str) -> str:
    """A proto comment without its per-line indentation and surrounding blank lines."""
    return "\n".join(line.strip() for line in text.strip("\n").splitlines()).strip()


def comments_from_set(descriptor_set: descriptor_pb2.FileDescriptorSet) -> dict[str, str]:
    """Leading (else trailing) comment of each element by full name."""
    comments: dict[str, str] = {}
    for file in descriptor_set.file:
        names = _element_names(file)
        for location in file.source_code_info.location:
            name = names.get(tuple(location.path))
            if name is None:
                continue
            text = clean_comment(location.leading_comments) or clean_comment(
                location.trailing_comments
            )
            if text:
                comments[name] = text
    return comments


def load_comments(path: Path) -> dict[str, str]:
    """Comments of the descriptor set at path; empty (with a warning) if it is missing."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        logger.warning("no proto comments for OpenAPI: %s", exc)
        return {}
    return comments_from_set(descriptor_pb2.FileDescriptorSet.FromString(raw))
