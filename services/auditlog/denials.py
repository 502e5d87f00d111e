"""Refusals for a scope or plan feature, recorded in the audit log off the request's path."""

from __future__ import annotations

import asyncio
import logging

import asyncpg

from services import errors
from services.auditlog.recorder import record
from services.auth.principal import Principal
from services.request_context import RequestContext

log = logging.getLogger("linkpulse.audit")

DENIED_ACTION = "access.denied"
# Refusals waiting to be written; past this many, new ones are dropped (and logged) rather
# than piling up behind a slow or unreachable database.
MAX_PENDING = 1000


def denied_target(method: str, reason: str) -> str:
    """The refused RPC and why, e.g. `QueryService/GetOverview (insufficient_scope)`."""
    short = method.rsplit(".", 1)[-1].lstrip("/")
    return f"{short} ({reason})"


class DenialRecorder:
    """An AuthInterceptor `on_denied` hook: each refusal is appended by a background task."""

    def __init__(self, pg: asyncpg.Pool) -> None:
        self._pg = pg
        self._pending: set[asyncio.Task[None]] = set()

    def __call__(
        self, principal: Principal, method: str, refusal: errors.ApiError, origin: RequestContext
    ) -> None:
        """Schedule the entry; returns at once (the refusal is answered without waiting)."""
        if len(self._pending) >= MAX_PENDING:
            log.warning("audit: %d refusals pending, one of %s dropped", MAX_PENDING, method)
            return
        task = asyncio.get_running_loop().create_task(
            self._write(principal, denied_target(method, refusal.reason), origin)
        )
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _write(self, principal: Principal, target: str, origin: RequestContext) -> None:
        try:
            await record(
                self._pg,
                workspace_id=principal.workspace_id,
                actor=principal.actor,
                action=DENIED_ACTION,
                target=target,
                outcome="denied",
                request_id=origin.request_id,
                source_address=origin.source_address,
            )
        except Exception:  # noqa: BLE001 - a lost audit entry must not surface to the caller
            log.exception("audit: could not record a refusal of %s", target)

    async def drain(self) -> None:
        """Wait for the entries still being written (at shutdown)."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
