"""Re-checking a credential's authorization for a route without calling the route's RPC.

When a credential's memo has expired (or it has none yet) the snapshot cache asks here instead
of recomputing the answer: the token is resolved and the route's policy (scope, plan feature)
checked with the same code as the services' auth interceptor (services.auth). A confirmation
gives the memo `<workspace>:<requests/minute>`; anything else (unknown or revoked token,
missing scope, store trouble) gives None and the request goes to the service, which answers
(and audits) the refusal itself. The gateway never refuses on its own account here.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

import asyncpg

from services.auth.authorize import authorize
from services.auth.principal import Principal
from services.auth.resolver import TokenResolver
from services.auth.tokens import bearer_token
from services.contract.routes import Route
from services.stores.postgres import create_pool

logger = logging.getLogger(__name__)


class Resolver(Protocol):
    """What resolves a bearer token (services.auth.resolver.TokenResolver)."""

    async def resolve(self, token: str, workspace_id: int | None = None) -> Principal: ...


class MemoCheck:
    """Confirms (credential, route) -> workspace the way the services' auth interceptor would."""

    def __init__(self, resolver: Resolver) -> None:
        self._resolver = resolver

    async def confirm(self, route: Route, authorization: str, workspace: str) -> str | None:
        """The memo of a credential the services would authorize for route; else None."""
        token = bearer_token(authorization)
        if token is None or (workspace and not workspace.isdigit()):
            return None
        try:
            principal = await self._resolver.resolve(token, int(workspace) if workspace else None)
            authorize(principal, route.options)
        except Exception:  # noqa: BLE001 - the service gives the refusal its proper answer
            return None
        return f"{principal.workspace_id}:{principal.requests_per_minute}"


class PostgresMemoCheck(MemoCheck):
    """A MemoCheck over PostgreSQL, its small pool opened on first use."""

    def __init__(self, database_url: str, max_connections: int = 2) -> None:
        self._url = database_url
        self._max = max_connections
        self._pool: asyncpg.Pool | None = None
        self._tokens: TokenResolver | None = None
        self._opening = asyncio.Lock()
        super().__init__(self)

    async def resolve(self, token: str, workspace_id: int | None = None) -> Principal:
        """The principal of token, looked up now (the memo is the cache)."""
        if self._tokens is None:
            async with self._opening:
                if self._tokens is None:
                    self._pool = await create_pool(self._url, min_size=0, max_size=self._max)
                    self._tokens = TokenResolver(self._pool, ttl=0.0)
        return await self._tokens.resolve(token, workspace_id)

    async def aclose(self) -> None:
        """Close the pool if it was opened."""
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
            self._tokens = None
