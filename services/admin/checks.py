"""Checks of administrative input before anything is written: each raises INVALID_ARGUMENT
(or NOT_FOUND) naming the field, through the same validators the API uses where they exist."""

from __future__ import annotations

import re
from typing import TypeAlias, cast
from urllib.parse import urlsplit

import asyncpg

from services import errors
from services.contract.compiled import contract
from services.money import FxTable
from services.timerange import parse_timezone

Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool

# A slug is one path segment of a short URL: letters, digits, `-` and `_`, starting with a letter
# or digit.
SLUG = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}\Z")
# A host name (a short-link domain): dot-separated labels of letters, digits and inner dashes.
_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
DOMAIN = re.compile(rf"{_LABEL}(\.{_LABEL})+\Z")
MAX_URL_LENGTH = 2048


def slug(value: str) -> str:
    """value if it is a valid link slug."""
    if not SLUG.match(value):
        raise errors.invalid_argument(
            "slug",
            f"slug {value!r} is not valid: 1-100 letters, digits, '-' or '_', "
            "starting with a letter or digit",
        )
    return value


def domain(value: str) -> str:
    """value, lower-cased, if it is a host name such as lp.link."""
    lowered = value.lower()
    if len(lowered) > 253 or not DOMAIN.match(lowered):
        raise errors.invalid_argument(
            "domain", f"domain {value!r} is not a host name such as lp.link"
        )
    return lowered


def url(value: str) -> str:
    """value if it is an absolute http(s) URL with a host."""
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        host = None
        parts = None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not host
        or len(value) > MAX_URL_LENGTH
        or any(c.isspace() or ord(c) < 32 for c in value)
    ):
        raise errors.invalid_argument(
            "url",
            f"URL {value!r} is not an absolute http(s) URL with a host "
            f"(at most {MAX_URL_LENGTH} characters, no spaces)",
        )
    return value


def timezone(value: str) -> str:
    """value if it is an IANA time zone name (as the analytics routes accept them)."""
    if not value:
        raise errors.invalid_argument("timezone", "timezone must not be empty")
    parse_timezone(value, "UTC")
    return value


async def plan(conn: Conn, value: str) -> str:
    """value if it is the code of a plan."""
    plans = [r["code"] for r in await conn.fetch("SELECT code FROM plans ORDER BY max_days")]
    if value not in plans:
        raise errors.invalid_argument("plan", f"unknown plan {value!r}; plans: {', '.join(plans)}")
    return value


async def currency(conn: Conn, value: str) -> str:
    """The upper-cased code if the currency is supported (it has an FX rate)."""
    code = value.strip().upper()
    supported = await FxTable(cast(asyncpg.Pool, conn)).currencies()
    if code not in supported:
        raise errors.invalid_argument(
            "currency",
            f"unsupported currency {value!r}; supported: {', '.join(sorted(supported))}",
        )
    return code


async def known_features(conn: Conn) -> set[str]:
    """Features some plan includes or some route requires."""
    in_plans = await conn.fetchval("SELECT ARRAY(SELECT DISTINCT unnest(features) FROM plans)")
    required = {p.feature for p in contract().policies.values() if p.feature}
    return set(in_plans) | required


async def features(conn: Conn, values: list[str]) -> list[str]:
    """The sorted distinct features if every one is known."""
    chosen = sorted({f.strip() for f in values if f.strip()})
    known = await known_features(conn)
    unknown = [f for f in chosen if f not in known]
    if unknown:
        raise errors.invalid_argument(
            "features",
            f"unknown features {', '.join(unknown)}; known: {', '.join(sorted(known))}",
        )
    return chosen


async def workspace(conn: Conn, workspace_id: int) -> int:
    """workspace_id if the workspace exists; NOT_FOUND otherwise."""
    if await conn.fetchval("SELECT 1 FROM workspaces WHERE id = $1", workspace_id) is None:
        raise errors.not_found(f"workspace {workspace_id}", "workspace")
    return workspace_id
