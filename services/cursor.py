"""Opaque page cursors: a position (epoch seconds, event id[, kind]) signed against tampering."""

from __future__ import annotations

import base64
import hashlib
import hmac

import orjson

from services import errors

_KEY = b"linkpulse-cursor-v1"


def encode(position: list[object]) -> str:
    """Cursor text for a page position."""
    body = orjson.dumps(position)
    tag = hmac.new(_KEY, body, hashlib.sha256).digest()[:8]
    return base64.urlsafe_b64encode(tag + body).decode().rstrip("=")


def decode(text: str, field: str = "cursor") -> list[object] | None:
    """The position in a cursor (None for an empty one); 400 naming field when it is not ours."""
    if not text:
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        tag, body = raw[:8], raw[8:]
        if not hmac.compare_digest(tag, hmac.new(_KEY, body, hashlib.sha256).digest()[:8]):
            raise ValueError("bad signature")
        position = orjson.loads(body)
        if not isinstance(position, list):
            raise ValueError("not a position")
        return position
    except ValueError as exc:
        raise errors.invalid_argument(field, f"{field} is not a cursor this API returned") from exc


def decode_position(text: str, field: str = "cursor") -> tuple[int, int] | None:
    """A (epoch seconds, event id) page position, or None for an empty cursor."""
    position = decode(text, field)
    if position is None:
        return None
    if len(position) != 2 or not all(isinstance(v, int) for v in position):
        raise errors.invalid_argument(field, f"{field} is not a cursor this API returned")
    return int(position[0]), int(position[1])  # type: ignore[call-overload]
