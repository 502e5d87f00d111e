"""Who is calling: resolved once per RPC by the auth interceptor, read by the handlers."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    """An authenticated caller acting in one workspace."""

    actor: str  # "api_key:12" or "user:5"
    workspace_id: int
    organization_id: int
    # Every workspace the credential may act in, the current one first.
    workspace_ids: tuple[int, ...]
    scopes: frozenset[str]
    plan: str
    features: frozenset[str]
    max_days: int
    timezone: str
    currency: str
    # The plan's rate limit (0: unlimited).
    requests_per_minute: int = 0

    def has_scope(self, scope: str) -> bool:
        """True when the credential carries scope."""
        return scope in self.scopes


_current: ContextVar[Principal] = ContextVar("linkpulse_principal")


def current() -> Principal:
    """The caller of the RPC being served."""
    return _current.get()


def bind(principal: Principal) -> object:
    """Make principal current for the running RPC; returns a token for `unbind`."""
    return _current.set(principal)


def unbind(token: object) -> None:
    """Restore the principal that was current before `bind`."""
    _current.reset(token)  # type: ignore[arg-type]
