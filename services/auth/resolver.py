"""Turns a bearer token into a Principal by looking it up in PostgreSQL, with a short cache."""

from __future__ import annotations

import time

import asyncpg

from services import errors
from services.auth import dashboard_tokens, live_tokens
from services.auth.principal import Principal
from services.auth.signing import Signer
from services.auth.tokens import API_KEY_PREFIX, ROLE_SCOPES, SESSION_PREFIX, token_hash

_WORKSPACE_COLUMNS = """
    w.id AS workspace_id, w.organization_id, w.plan, w.timezone, w.default_currency,
    p.max_days, p.requests_per_minute,
    ARRAY(SELECT DISTINCT unnest(p.features || w.extra_features)) AS features
"""

_API_KEY_SQL = f"""
SELECT k.id AS key_id, k.scopes, {_WORKSPACE_COLUMNS}
FROM api_keys k
JOIN workspaces w ON w.id = k.workspace_id
JOIN plans p ON p.code = w.plan
WHERE k.key_hash = $1 AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())
"""

_WORKSPACE_SQL = f"""
SELECT {_WORKSPACE_COLUMNS}
FROM workspaces w
JOIN plans p ON p.code = w.plan
WHERE w.id = $1
"""

# A live token lives no longer than its key: revoking the key ends its tokens too.
_KEY_ALIVE_SQL = """
SELECT 1 FROM api_keys
WHERE id = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
"""

# A dashboard token's row, honoured only while neither revoked nor expired.
_DASHBOARD_SQL = f"""
SELECT d.id AS token_id, {_WORKSPACE_COLUMNS}
FROM dashboard_tokens d
JOIN workspaces w ON w.id = d.workspace_id
JOIN plans p ON p.code = w.plan
WHERE d.id = $1 AND d.workspace_id = $2 AND d.revoked_at IS NULL AND d.expires_at > now()
"""

_DASHBOARD_ALIVE_SQL = """
SELECT 1 FROM dashboard_tokens WHERE id = $1 AND revoked_at IS NULL AND expires_at > now()
"""

_SESSION_SQL = f"""
SELECT s.user_id, m.role, {_WORKSPACE_COLUMNS}
FROM sessions s
JOIN memberships m ON m.user_id = s.user_id
JOIN workspaces w ON w.id = m.workspace_id
JOIN plans p ON p.code = w.plan
WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > now()
ORDER BY w.id
"""


def _principal(
    row: asyncpg.Record, actor: str, scopes: tuple[str, ...], ids: tuple[int, ...]
) -> Principal:
    return Principal(
        actor=actor,
        workspace_id=row["workspace_id"],
        organization_id=row["organization_id"],
        workspace_ids=ids,
        scopes=frozenset(scopes),
        plan=row["plan"],
        features=frozenset(row["features"]),
        max_days=row["max_days"],
        timezone=row["timezone"],
        currency=row["default_currency"].strip(),
        requests_per_minute=row["requests_per_minute"],
    )


class TokenResolver:
    """Resolves API keys, session, live and dashboard tokens; results are trusted for `ttl` s."""

    def __init__(self, pool: asyncpg.Pool, ttl: float = 5.0, signer: Signer | None = None) -> None:
        self._pool = pool
        self._ttl = ttl
        self._signer = signer
        self._cache: dict[tuple[bytes, int | None], tuple[float, Principal]] = {}

    async def resolve(self, token: str, workspace_id: int | None = None) -> Principal:
        """The principal of token, acting in workspace_id if given (a session may hold several)."""
        digest = token_hash(token)
        key = (digest, workspace_id)
        hit = self._cache.get(key)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            return hit[1]
        if token.startswith(SESSION_PREFIX):
            principal = await self._session(digest, workspace_id)
        elif token.startswith(API_KEY_PREFIX):
            principal = await self._api_key(digest, workspace_id)
        elif token.startswith(dashboard_tokens.PREFIX) and self._signer is not None:
            principal = await self._dashboard(token, workspace_id)
        elif token.startswith(live_tokens.PREFIX) and self._signer is not None:
            # Not remembered: a live token is used once per connection and expires soon.
            return await self._live(token, workspace_id)
        else:
            raise errors.unauthenticated("invalid or expired token")
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key] = (now + self._ttl, principal)
        return principal

    async def _api_key(self, digest: bytes, workspace_id: int | None) -> Principal:
        row = await self._pool.fetchrow(_API_KEY_SQL, digest)
        if row is None:
            raise errors.unauthenticated("invalid or expired token")
        if workspace_id is not None and workspace_id != row["workspace_id"]:
            raise errors.permission_denied(
                "forbidden", f"the key has no access to workspace {workspace_id}"
            )
        return _principal(
            row, f"api_key:{row['key_id']}", tuple(row["scopes"]), (row["workspace_id"],)
        )

    async def _live(self, token: str, workspace_id: int | None) -> Principal:
        assert self._signer is not None
        claims = live_tokens.read(self._signer, token)
        if workspace_id is not None and workspace_id != claims.workspace_id:
            raise errors.permission_denied(
                "forbidden", f"the token has no access to workspace {workspace_id}"
            )
        kind, _, key_id = claims.actor.partition(":")
        if kind == "api_key" and not await self._pool.fetchval(_KEY_ALIVE_SQL, int(key_id)):
            raise errors.unauthenticated("invalid or expired token")
        if kind == dashboard_tokens.ACTOR_KIND and not await self._pool.fetchval(
            _DASHBOARD_ALIVE_SQL, int(key_id)
        ):
            raise errors.unauthenticated("invalid or expired token")
        row = await self._pool.fetchrow(_WORKSPACE_SQL, claims.workspace_id)
        if row is None:
            raise errors.unauthenticated("invalid or expired token")
        return _principal(row, claims.actor, tuple(live_tokens.SCOPES), (claims.workspace_id,))

    async def _dashboard(self, token: str, workspace_id: int | None) -> Principal:
        assert self._signer is not None
        claims = dashboard_tokens.read(self._signer, token)
        if workspace_id is not None and workspace_id != claims.workspace_id:
            raise errors.permission_denied(
                "forbidden", f"the token has no access to workspace {workspace_id}"
            )
        row = await self._pool.fetchrow(_DASHBOARD_SQL, claims.token_id, claims.workspace_id)
        if row is None:
            raise errors.unauthenticated("invalid or expired dashboard token (revoked or expired)")
        return _principal(
            row,
            dashboard_tokens.actor(claims.token_id),
            tuple(sorted(dashboard_tokens.SCOPES)),
            (claims.workspace_id,),
        )

    async def _session(self, digest: bytes, workspace_id: int | None) -> Principal:
        rows = await self._pool.fetch(_SESSION_SQL, digest)
        if not rows:
            raise errors.unauthenticated("invalid or expired token")
        ids = tuple(r["workspace_id"] for r in rows)
        chosen = rows[0]
        if workspace_id is not None:
            matches = [r for r in rows if r["workspace_id"] == workspace_id]
            if not matches:
                raise errors.permission_denied(
                    "forbidden", f"the session has no access to workspace {workspace_id}"
                )
            chosen = matches[0]
        ordered = (chosen["workspace_id"],) + tuple(i for i in ids if i != chosen["workspace_id"])
        return _principal(chosen, f"user:{chosen['user_id']}", ROLE_SCOPES[chosen["role"]], ordered)
