"""What the log lines of the request being served carry: request id, route, workspace, …
(bound per request by the gateway and the gRPC servers, read by the log formatters)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from types import MappingProxyType
from typing import Any

_NONE: Mapping[str, Any] = MappingProxyType({})
_fields: ContextVar[Mapping[str, Any]] = ContextVar("linkpulse_log_fields", default=_NONE)


def fields() -> Mapping[str, Any]:
    """The fields bound for the current request (empty outside one)."""
    return _fields.get()


def bind(**values: Any) -> Token[Mapping[str, Any]]:
    """Start a request's fields (the enclosing ones plus values); returns a token for `unbind`."""
    return _fields.set({**_fields.get(), **values})


def unbind(token: Token[Mapping[str, Any]]) -> None:
    """Restore the fields that were bound before `bind`."""
    _fields.reset(token)


@contextmanager
def bound(**values: Any) -> Iterator[None]:
    """The fields bound for the with-block."""
    token = bind(**values)
    try:
        yield
    finally:
        unbind(token)


def annotate(**values: Any) -> None:
    """Add values to the current request's fields (seen by its tasks too); no-op outside one."""
    current = _fields.get()
    if isinstance(current, dict):
        current.update(values)
