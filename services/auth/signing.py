"""Signed, expiring tokens (live-feed tokens, embed tokens, download links) under one secret.

A token is `<base64url JSON claims>.<base64url HMAC-SHA256>`; the HMAC key is derived from the
deployment's secret and the token's purpose, so a token minted for one purpose never verifies
for another. The claims carry `exp` (epoch seconds).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path
from typing import Any

import orjson

from services import errors
from services.config import Settings

_TAG_BYTES = 16


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SignatureError(ValueError):
    """A token that was not signed by this deployment for this purpose, or has expired."""


class Signer:
    """Mints and checks tokens signed with one secret."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the signing secret must be at least 16 bytes")
        self._secret = secret

    def _tag(self, purpose: str, body: bytes) -> bytes:
        key = hmac.new(self._secret, purpose.encode(), hashlib.sha256).digest()
        return hmac.new(key, body, hashlib.sha256).digest()[:_TAG_BYTES]

    def sign(self, purpose: str, claims: dict[str, Any], ttl_seconds: float) -> str:
        """A token for purpose carrying claims, valid for ttl_seconds from now."""
        body = orjson.dumps({**claims, "exp": int(time.time() + ttl_seconds)})
        return f"{_b64(body)}.{_b64(self._tag(purpose, body))}"

    def claims(self, purpose: str, token: str, now: float | None = None) -> dict[str, Any]:
        """The claims of a valid, unexpired token for purpose; SignatureError otherwise."""
        body_text, dot, tag_text = token.partition(".")
        if not dot:
            raise SignatureError("malformed token")
        try:
            body, tag = _unb64(body_text), _unb64(tag_text)
        except ValueError as exc:
            raise SignatureError("malformed token") from exc
        if not hmac.compare_digest(tag, self._tag(purpose, body)):
            raise SignatureError("bad signature")
        try:
            claims = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise SignatureError("malformed token") from exc
        if not isinstance(claims, dict) or not isinstance(claims.get("exp"), int):
            raise SignatureError("malformed token")
        if claims["exp"] <= (time.time() if now is None else now):
            raise SignatureError("expired token")
        return claims

    def verify(self, purpose: str, token: str) -> dict[str, Any]:
        """Like `claims`, but a bad or expired token is a 401 naming the purpose."""
        try:
            return self.claims(purpose, token)
        except SignatureError as exc:
            raise errors.unauthenticated(f"invalid or expired {purpose} token ({exc})") from exc


def load_secret(settings: Settings) -> bytes:
    """The deployment's signing secret: SIGNING_KEY, else a random one kept in the run directory.

    Every process of one machine shares the run directory, so they agree on the key; a
    deployment spanning machines sets SIGNING_KEY.
    """
    if settings.signing_key:
        return settings.signing_key.encode()
    path = Path(settings.run_dir) / "signing.key"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(32))
    for _ in range(50):  # another process may have created it a moment ago and be writing
        text = path.read_text().strip()
        if text:
            return text.encode()
        time.sleep(0.01)
    raise RuntimeError(f"{path} is empty: delete it or set SIGNING_KEY")


def signer(settings: Settings) -> Signer:
    """The Signer of this deployment."""
    return Signer(load_secret(settings))
