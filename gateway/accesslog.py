"""Keeps credentials out of the access log: `token=` query values are logged as `token=…`.

WebSocket and embed URLs carry short-lived tokens in the query string (browsers cannot send
headers there); the Authorization header is never logged by uvicorn.
"""

from __future__ import annotations

import logging
import re

_TOKEN = re.compile(r"((?:^|[?&])token=)[^&\s]*", re.IGNORECASE)


def redact(text: str) -> str:
    """text with every token= value replaced."""
    return _TOKEN.sub(r"\1…", text)


class RedactTokens(logging.Filter):
    """Rewrites the request path of uvicorn's access records."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Always keep the record, with its path redacted."""
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


def install() -> None:
    """Redact tokens in uvicorn's access log (once per process)."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactTokens) for f in access.filters):
        access.addFilter(RedactTokens())
