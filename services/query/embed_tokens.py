"""Embed tokens: signed, expiring, revocable grants to read one workspace's (or link's) widget.

The signed token carries the id of its `embed_tokens` row; a token is honoured only while the
signature verifies, it has not expired and its row is not revoked (rows are re-read after at
most a few seconds, so a revocation takes effect that fast).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from services import errors, field_rules, protos
from services.auditlog.recorder import record, transaction
from services.auditlog.revocations import Revocable, owned, revoke_owned
from services.auth.principal import Principal
from services.auth.signing import Signer
from services.query.scope import require_link
from services.timerange import utc_iso

PURPOSE = "embed"
DEFAULT_DAYS = 30
DEFAULT_TTL_SECONDS = 30 * 86400
MIN_TTL_SECONDS, MAX_TTL_SECONDS = field_rules.bounds(
    protos.query_pb2.CreateEmbedTokenRequest.DESCRIPTOR, "ttl_seconds"
)
PAGE_PATH = "/embed"

_COLUMNS = "id, workspace_id, link_id, max_days, created_by, created_at, expires_at, revoked_at"
_EMBED_TOKENS = Revocable(
    "embed_tokens", _COLUMNS, "embed.revoked", "embed_token:{id}", noun="embed token"
)
_GRANT_SQL = """
SELECT e.id, e.workspace_id, e.link_id, e.max_days, e.expires_at, e.revoked_at,
       w.organization_id, w.plan, w.timezone, w.default_currency, p.max_days AS plan_max_days,
       ARRAY(SELECT DISTINCT unnest(p.features || w.extra_features)) AS features
FROM embed_tokens e
JOIN workspaces w ON w.id = e.workspace_id
JOIN plans p ON p.code = w.plan
WHERE e.id = $1
"""


def _describe(row: asyncpg.Record, token: str = "") -> dict[str, Any]:
    found = {
        "id": row["id"],
        "workspace_id": row["workspace_id"],
        "link_id": row["link_id"],
        "days": row["max_days"],
        "created_by": row["created_by"],
        "created_at": utc_iso(row["created_at"]),
        "expires_at": utc_iso(row["expires_at"]),
        "revoked_at": utc_iso(row["revoked_at"]),
    }
    if token:
        found["token"] = token
        found["embed_path"] = f"{PAGE_PATH}?token={token}"
    return found


def to_message(token: dict[str, Any]) -> protos.query_pb2.EmbedToken:
    """The API form of a token description (from `create`, `revoke` or `list_tokens`)."""
    return protos.query_pb2.EmbedToken(
        id=token["id"],
        token=token.get("token"),
        link_id=token["link_id"],
        days=token["days"],
        created_by=token["created_by"],
        created_at=token["created_at"] or "",
        expires_at=token["expires_at"] or "",
        revoked_at=token["revoked_at"],
        embed_path=token.get("embed_path"),
    )


async def create(
    pg: asyncpg.Pool,
    signer: Signer,
    *,
    workspace_id: int,
    actor: str,
    link_id: int | None = None,
    days: int | None = None,
    ttl_seconds: int | None = None,
) -> dict[str, Any]:
    """Mint a token for the workspace (or one of its links); the token itself is never stored."""
    plan_days = await pg.fetchval(
        "SELECT p.max_days FROM workspaces w JOIN plans p ON p.code = w.plan WHERE w.id = $1",
        workspace_id,
    )
    if plan_days is None:
        raise errors.not_found(f"workspace {workspace_id}")
    days = DEFAULT_DAYS if days is None else days
    if not 1 <= days <= plan_days:
        raise errors.invalid_argument(
            "days", f"days must be between 1 and {plan_days} (the plan's history)"
        )
    ttl = DEFAULT_TTL_SECONDS if ttl_seconds is None else ttl_seconds
    if not MIN_TTL_SECONDS <= ttl <= MAX_TTL_SECONDS:
        raise errors.invalid_argument(
            "ttl_seconds",
            f"ttl_seconds must be between {MIN_TTL_SECONDS} and {MAX_TTL_SECONDS}",
        )
    if link_id is not None:
        await require_link(pg, workspace_id, link_id)
    expires = datetime.now(UTC) + timedelta(seconds=ttl)
    async with transaction(pg) as tx:
        row = await tx.fetchrow(
            "INSERT INTO embed_tokens (workspace_id, link_id, max_days, created_by, expires_at)"
            f" VALUES ($1, $2, $3, $4, $5) RETURNING {_COLUMNS}",
            workspace_id,
            link_id,
            days,
            actor,
            expires,
        )
        scope = f"link:{link_id}" if link_id is not None else f"workspace:{workspace_id}"
        await record(
            tx,
            workspace_id=workspace_id,
            actor=actor,
            action="embed.created",
            target=f"embed_token:{row['id']} {scope} days:{days}",
        )
    claims = {"eid": row["id"], "ws": workspace_id, "link": link_id or 0, "days": days}
    return _describe(row, signer.sign(PURPOSE, claims, ttl))


async def revoke(
    pg: asyncpg.Pool, token_id: int, *, actor: str, workspace_id: int | None = None
) -> dict[str, Any]:
    """Revoke a token (of workspace_id, when given); 404 when there is no such token."""
    return _describe(
        await revoke_owned(pg, _EMBED_TOKENS, token_id, actor=actor, workspace_id=workspace_id)
    )


async def get(pg: asyncpg.Pool, token_id: int) -> dict[str, Any]:
    """One token of any workspace (for operators; never the token itself); 404 when unknown."""
    row = await pg.fetchrow(f"SELECT {_COLUMNS} FROM embed_tokens WHERE id = $1", token_id)
    if row is None:
        raise errors.not_found(f"embed token {token_id}")
    return _describe(row)


async def list_tokens(
    pg: asyncpg.Pool, workspace_id: int, include_inactive: bool = False
) -> list[dict[str, Any]]:
    """The workspace's tokens, newest first (only honoured ones unless include_inactive)."""
    return [_describe(r) for r in await owned(pg, _EMBED_TOKENS, workspace_id, include_inactive)]


@dataclass(frozen=True)
class Grant:
    """What an honoured token lets its holder read."""

    token_id: int
    workspace_id: int
    link_id: int | None
    days: int
    principal: Principal


def _grant(row: asyncpg.Record) -> Grant:
    days = min(row["max_days"], row["plan_max_days"])
    return Grant(
        token_id=row["id"],
        workspace_id=row["workspace_id"],
        link_id=row["link_id"],
        days=days,
        principal=Principal(
            actor=f"embed:{row['id']}",
            workspace_id=row["workspace_id"],
            organization_id=row["organization_id"],
            workspace_ids=(row["workspace_id"],),
            scopes=frozenset(),  # read-only: the widget route needs none, nothing else is open
            plan=row["plan"],
            features=frozenset(row["features"]),
            max_days=days,
            timezone=row["timezone"],
            currency=row["default_currency"].strip(),
        ),
    )


class EmbedGrants:
    """Checks embed tokens: signature and expiry, then the row (re-read after `ttl` seconds)."""

    def __init__(self, pg: asyncpg.Pool, signer: Signer, ttl: float) -> None:
        self._pg = pg
        self._signer = signer
        self._ttl = ttl
        self._rows: dict[int, tuple[float, asyncpg.Record | None]] = {}

    async def _row(self, token_id: int) -> asyncpg.Record | None:
        now = time.monotonic()
        hit = self._rows.get(token_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        row = await self._pg.fetchrow(_GRANT_SQL, token_id)
        if len(self._rows) > 10_000:
            self._rows.clear()
        self._rows[token_id] = (now + self._ttl, row)
        return row

    async def grant(self, token: str) -> Grant:
        """The grant of a valid token; 401 for a missing, forged, expired or revoked one."""
        if not token:
            raise errors.unauthenticated("missing embed token: pass ?token=…")
        claims = self._signer.verify(PURPOSE, token)
        token_id = claims.get("eid")
        if not isinstance(token_id, int):
            raise errors.unauthenticated("invalid or expired embed token (malformed token)")
        row = await self._row(token_id)
        if row is None or row["workspace_id"] != claims.get("ws"):
            raise errors.unauthenticated("invalid or expired embed token (unknown token)")
        if row["revoked_at"] is not None:
            raise errors.unauthenticated("invalid or expired embed token (revoked)")
        if row["expires_at"] <= datetime.now(UTC):
            raise errors.unauthenticated("invalid or expired embed token (expired token)")
        return _grant(row)
