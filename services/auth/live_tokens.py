"""Short-lived live-feed tokens: minted for a caller with analytics:read, read-only, one
workspace, a few minutes at most; accepted as a bearer token like an API key."""

from __future__ import annotations

from dataclasses import dataclass

from services import errors, field_rules, protos
from services.auth.principal import Principal
from services.auth.signing import Signer

PREFIX = "lpl_"
PURPOSE = "live"
SCOPES = frozenset({"analytics:read"})
DEFAULT_SECONDS = 60
MAX_SECONDS = field_rules.maximum(protos.live_pb2.LiveTokenRequest.DESCRIPTOR, "ttl_seconds")


@dataclass(frozen=True)
class LiveClaims:
    """What a live token says: the workspace and the credential that minted it."""

    workspace_id: int
    actor: str


def lifetime(requested: int | None) -> int:
    """The lifetime of a token asked for with ttl_seconds (default when None); 400 outside."""
    if requested is None:
        return DEFAULT_SECONDS
    if not 1 <= requested <= MAX_SECONDS:
        raise errors.invalid_argument(
            "ttl_seconds", f"ttl_seconds must be between 1 and {MAX_SECONDS}"
        )
    return requested


def mint(signer: Signer, caller: Principal, seconds: int) -> str:
    """A token for caller's workspace, valid for seconds."""
    claims = {"w": caller.workspace_id, "a": caller.actor}
    return PREFIX + signer.sign(PURPOSE, claims, seconds)


def read(signer: Signer, token: str) -> LiveClaims:
    """The claims of a valid live token; 401 when forged, malformed or expired."""
    claims = signer.verify(PURPOSE, token.removeprefix(PREFIX))
    workspace, actor = claims.get("w"), claims.get("a")
    if not isinstance(workspace, int) or not isinstance(actor, str):
        raise errors.unauthenticated("invalid live token")
    return LiveClaims(workspace, actor)
