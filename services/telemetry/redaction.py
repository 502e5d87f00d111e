"""Scrubbing credentials out of log text: API keys and session tokens, signed (live, embed,
download) tokens, bearer credentials, `token=` query values and passwords in URLs."""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "…"

# Each pattern keeps its group 1 (what names the secret) and masks the rest of the match; it runs
# only on text holding its needle (in lower case), which keeps a line's scrubbing to a few µs.
_PATTERNS = (
    # Authorization: Bearer <anything>.
    ("bearer", re.compile(r"(?i)(\bbearer\s+)[^\s\"'\\,;)\]}]+")),
    # token=<value> in a query string or a key=value text.
    ("token=", re.compile(r"(?i)((?:^|[?&\s\"'(])token=)[^&\s\"'\\,;)]+")),
    # scheme://user:password@host: the password.
    ("://", re.compile(r"(?i)(\b[a-z][a-z0-9+.\-]*://[^:/@\s\"'\\]*:)[^@/\s\"'\\]+(?=@)")),
    # API keys (lp_), session tokens (lps_) and live-feed tokens (lpl_).
    ("lp", re.compile(r"(\blp[sl]?_)[A-Za-z0-9_\-.]{16,}")),
    # Signed tokens without a prefix (embed tokens, download links): base64url of a JSON object
    # (`eyJ…`), a dot, the tag.
    ("eyj", re.compile(r"()\beyJ[A-Za-z0-9_\-]{16,}\.[A-Za-z0-9_\-]{16,}")),
)


def redact(text: str, literals: Iterable[str] = ()) -> str:
    """text with every credential it holds (and every one of literals) masked."""
    lowered = text.lower()
    for needle, pattern in _PATTERNS:
        if needle in lowered:
            text = pattern.sub(lambda m: m.group(1) + MASK, text)
    for literal in literals:
        if literal in text:
            text = text.replace(literal, MASK)
    return text
