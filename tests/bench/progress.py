"""Progress lines on stderr."""

from __future__ import annotations

import sys
import time

_BEGAN = time.monotonic()


def say(message: str) -> None:
    """One progress line on stderr, stamped with the seconds since the run began."""
    print(f"bench [{time.monotonic() - _BEGAN:7.1f}s] {message}", file=sys.stderr, flush=True)
