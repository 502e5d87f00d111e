"""Dashboard tokens: signed bearer tokens naming a `dashboard_tokens` row, read-only (scope
analytics:read) in one workspace; honoured while the signature holds and the row is neither
revoked nor expired. Minted by services/query/dashboard_tokens.py."""

from __future__ import annotations

from dataclasses import dataclass

from services import errors
from services.auth.signing import Signer

PREFIX = "lpd_"
PURPOSE = "dashboard"
# What the dashboard page needs: the analytics read routes, a live-feed token, exports.
SCOPES = frozenset({"analytics:read"})
ACTOR_KIND = "dashboard"


@dataclass(frozen=True)
class DashboardClaims:
    """What a dashboard token says: its row and workspace."""

    token_id: int
    workspace_id: int


def mint(signer: Signer, token_id: int, workspace_id: int, seconds: float) -> str:
    """The bearer token of row token_id of workspace_id, valid for seconds."""
    return PREFIX + signer.sign(PURPOSE, {"did": token_id, "ws": workspace_id}, seconds)


def read(signer: Signer, token: str) -> DashboardClaims:
    """The claims of a validly signed, unexpired dashboard token; 401 otherwise."""
    claims = signer.verify(PURPOSE, token.removeprefix(PREFIX))
    token_id, workspace = claims.get("did"), claims.get("ws")
    if not isinstance(token_id, int) or not isinstance(workspace, int):
        raise errors.unauthenticated("invalid dashboard token")
    return DashboardClaims(token_id, workspace)


def actor(token_id: int) -> str:
    """The actor a dashboard token acts as (in audit entries and live-token claims)."""
    return f"{ACTOR_KIND}:{token_id}"
