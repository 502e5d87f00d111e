"""The gateway's own script and style files (gateway/static), served under /static/.

Pages name them with `asset_path`, which appends a digest of the file's content, so a browser
may keep them for a year and still never runs a stale script after an upgrade.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC_DIR = Path(__file__).resolve().parent / "static"
PATH = "/static"


@cache
def _digest(name: str) -> str:
    return hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()[:12]


def asset_path(name: str) -> str:
    """The URL path of a static file, versioned by its content."""
    return f"{PATH}/{name}?v={_digest(name)}"


class Assets(StaticFiles):
    """StaticFiles for gateway/static with long caching and no content sniffing."""

    async def get_response(self, path: str, scope: Scope):  # type: ignore[no-untyped-def]
        """The file, with the headers every asset gets."""
        response = await super().get_response(path, scope)
        if response.status_code == 200:
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def static_files() -> Assets:
    """The ASGI app serving gateway/static."""
    return Assets(directory=STATIC_DIR)
