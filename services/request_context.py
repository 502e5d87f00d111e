"""Where a request came from (request id, client address), bound per RPC for audit records."""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class RequestContext:
    """The gateway's x-request-id and x-forwarded-for of the RPC being served ("" if absent)."""

    request_id: str = ""
    source_address: str = ""

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, str]) -> RequestContext:
        """The context carried by an RPC's invocation metadata."""
        forwarded = metadata.get("x-forwarded-for", "")
        return cls(
            request_id=metadata.get("x-request-id", "")[:128],
            source_address=forwarded.split(",", 1)[0].strip()[:64],
        )


_EMPTY = RequestContext()
_current: ContextVar[RequestContext] = ContextVar("linkpulse_request_context", default=_EMPTY)


def current() -> RequestContext:
    """The context of the RPC being served (empty outside one)."""
    return _current.get()


def bind(context: RequestContext) -> object:
    """Make context current; returns a token for `unbind`."""
    return _current.set(context)


def unbind(token: object) -> None:
    """Restore the context that was current before `bind`."""
    _current.reset(token)  # type: ignore[arg-type]
