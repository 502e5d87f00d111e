"""Whether a caller may use an RPC: its scope and plan feature against the RPC's policy."""

from __future__ import annotations

from typing import Protocol

from services import errors
from services.auth.principal import Principal


class Policy(Protocol):
    """What authorize reads of an RPC's policy (linkpulse.v1.RouteOptions)."""

    @property
    def scope(self) -> str: ...

    @property
    def feature(self) -> str: ...


def authorize(principal: Principal, policy: Policy) -> None:
    """Refuse (PERMISSION_DENIED) a principal lacking the policy's scope or plan feature."""
    if policy.scope and not principal.has_scope(policy.scope):
        raise errors.permission_denied(
            "insufficient_scope", f"this route requires the '{policy.scope}' scope"
        )
    if policy.feature and policy.feature not in principal.features:
        raise errors.permission_denied(
            "feature_not_enabled",
            f"'{policy.feature}' is not enabled for this workspace's plan ({principal.plan})",
        )
