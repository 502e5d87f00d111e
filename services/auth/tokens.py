"""Bearer credentials: API keys and session tokens, minted here and stored only as hashes."""

from __future__ import annotations

import hashlib
import secrets

API_KEY_PREFIX = "lp_"
SESSION_PREFIX = "lps_"
# What `linkpulse apikey create` accepts; routes name the one they need in the protos.
KNOWN_SCOPES = ("analytics:read", "events:write", "workspace:update", "audit:write")
ROLE_SCOPES = {
    "owner": ("analytics:read", "events:write", "workspace:update"),
    "admin": ("analytics:read", "events:write", "workspace:update"),
    "member": ("analytics:read",),
}


def bearer_token(authorization: str) -> str | None:
    """The token of an `Authorization: Bearer <token>` header; None for any other header."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def token_hash(token: str) -> bytes:
    """SHA-256 of a token: what the database keeps and looks up by."""
    return hashlib.sha256(token.encode()).digest()


def new_api_key() -> str:
    """A fresh API key (shown once to its creator)."""
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def new_session_token() -> str:
    """A fresh session token."""
    return SESSION_PREFIX + secrets.token_urlsafe(32)


def display_prefix(token: str) -> str:
    """The first characters of a token, safe to list and log."""
    return token[:10]
