"""Visitor ids of clicks that name none: a keyed hash of the click's address and user agent.

The key is a secret of the deployment, so a stored id cannot be traced back to an address by
hashing every IPv4 address; within one deployment the same address and user agent always give
the same id, so visitor counts do not change. The address itself is never stored.
"""

from __future__ import annotations

import hashlib
import hmac

from services.auth import signing
from services.config import Settings

# Hex digits kept of the HMAC (128 bits, the length visitor ids always had).
ID_HEX = 32
MIN_KEY_BYTES = 16
# Derives the visitor key from the signing secret, distinct from every token purpose.
_LABEL = b"linkpulse visitor id"


def visitor_key(settings: Settings) -> bytes:
    """The deployment's visitor-id key: VISITOR_ID_KEY, else derived from the signing secret."""
    if settings.visitor_id_key:
        key = settings.visitor_id_key.encode()
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"VISITOR_ID_KEY must be at least {MIN_KEY_BYTES} bytes")
        return key
    return hmac.new(signing.load_secret(settings), _LABEL, hashlib.sha256).digest()


class VisitorIds:
    """Visitor ids under one key: the first 32 hex digits of HMAC-SHA256(key, `ip|user agent`)."""

    __slots__ = ("_keyed", "key")

    def __init__(self, key: bytes) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"a visitor key must be at least {MIN_KEY_BYTES} bytes")
        self.key = key
        # Copied for each id: the padded key blocks are hashed once, not once per click.
        self._keyed = hmac.new(key, digestmod=hashlib.sha256)

    def of(self, ip: str, user_agent: str, event_id: int) -> str:
        """The visitor id of a click with this address and user agent (`anon:<id>` without)."""
        if ip or user_agent:
            keyed = self._keyed.copy()
            keyed.update(f"{ip}|{user_agent}".encode())
            return keyed.hexdigest()[:ID_HEX]
        return f"anon:{event_id}"
