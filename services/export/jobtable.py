"""A job table in PostgreSQL (exports, batches): one live job per request, run by attempts."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson

from services import errors
from services.telemetry import measure


def new_id(prefix: str) -> str:
    """A fresh job id such as `exp_3f9a…`."""
    return f"{prefix}_{secrets.token_hex(10)}"


def request_key(actor: str, payload: Any) -> str:
    """Identity of a request: the same caller asking the same thing gets the same key."""
    body = orjson.dumps([actor, payload], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(body).hexdigest()


@dataclass(frozen=True)
class JobTable:
    """One job table: its name, the columns a job is read with, its id prefix and its noun."""

    table: str
    columns: str
    id_prefix: str
    noun: str  # names the job in NOT_FOUND messages, e.g. "export"
    # What starting an attempt sets besides status and attempt.
    claim_sets: str = "heartbeat_at = now()"

    async def create(
        self, pg: asyncpg.Pool, *, workspace_id: int, actor: str, key: str, values: dict[str, Any]
    ) -> tuple[asyncpg.Record, bool]:
        """A queued job with values, or the one of key still queued or running; (job, created)."""
        names = ("id", "workspace_id", "actor", "request_key", *values)
        placeholders = ", ".join(f"${i}" for i in range(1, len(names) + 1))
        insert = (
            f"INSERT INTO {self.table} ({', '.join(names)}) VALUES ({placeholders})"
            " ON CONFLICT (workspace_id, request_key) WHERE status IN ('queued', 'running')"
            f" DO NOTHING RETURNING {self.columns}"
        )
        live = (
            f"SELECT {self.columns} FROM {self.table} WHERE workspace_id = $1"
            " AND request_key = $2 AND status IN ('queued', 'running')"
        )
        while True:
            async with pg.acquire() as conn:
                row = await conn.fetchrow(
                    insert, new_id(self.id_prefix), workspace_id, actor, key, *values.values()
                )
                if row is not None:
                    measure.job_state(self.noun, "queued")
                    return row, True
                existing = await conn.fetchrow(live, workspace_id, key)
            if existing is not None:
                return existing, False
            # It finished between the two statements: start a new one.

    async def get(self, pg: asyncpg.Pool, workspace_id: int, job_id: str) -> asyncpg.Record:
        """The workspace's job; NOT_FOUND for an unknown id or another workspace's job."""
        row = await pg.fetchrow(
            f"SELECT {self.columns} FROM {self.table} WHERE workspace_id = $1 AND id = $2",
            workspace_id,
            job_id,
        )
        if row is None:
            raise errors.not_found(f"{self.noun} {job_id}")
        return row

    async def find(self, pg: asyncpg.Pool, job_id: str) -> asyncpg.Record:
        """The job of any workspace (for operators); NOT_FOUND for an unknown id."""
        row = await pg.fetchrow(f"SELECT {self.columns} FROM {self.table} WHERE id = $1", job_id)
        if row is None:
            raise errors.not_found(f"{self.noun} {job_id}")
        return row

    async def listing(
        self,
        pg: asyncpg.Pool,
        *,
        workspace_id: int | None = None,
        status: str | None = None,
        limit: int = 100,
        after: str | None = None,
    ) -> list[asyncpg.Record]:
        """Up to limit jobs (of one workspace, in one status, when given), newest first,
        continuing after the job `after`."""
        conditions: list[str] = ["TRUE"]
        args: list[Any] = [limit]
        for column, value in (("workspace_id", workspace_id), ("status", status)):
            if value is not None:
                args.append(value)
                conditions.append(f"{column} = ${len(args)}")
        if after is not None:
            await self.find(pg, after)
            args.append(after)
            n = len(args)
            conditions.append(
                f"(created_at, id) < (SELECT created_at, id FROM {self.table} WHERE id = ${n})"
            )
        return list(
            await pg.fetch(
                f"SELECT {self.columns} FROM {self.table} WHERE {' AND '.join(conditions)}"
                " ORDER BY created_at DESC, id DESC LIMIT $1",
                *args,
            )
        )

    async def claim(self, pg: asyncpg.Pool, job_id: str) -> asyncpg.Record | None:
        """Start a new attempt of a queued or running job; None when it has finished."""
        row = await pg.fetchrow(
            f"UPDATE {self.table} SET status = 'running', attempt = attempt + 1,"
            f" {self.claim_sets} WHERE id = $1 AND status IN ('queued', 'running')"
            f" RETURNING {self.columns}",
            job_id,
        )
        if row is not None:
            measure.job_state(self.noun, "running")
        return row

    async def finish(
        self, pg: asyncpg.Pool, job_id: str, attempt: int, sets: str, *args: Any
    ) -> bool:
        """End the attempt's job with sets ($3 on: args); False if the attempt no longer owns it."""
        found = await pg.fetchval(
            f"UPDATE {self.table} SET {sets}, finished_at = now()"
            " WHERE id = $1 AND attempt = $2 AND status = 'running' RETURNING 1",
            job_id,
            attempt,
            *args,
        )
        return found is not None

    async def fail(self, pg: asyncpg.Pool, job_id: str, attempt: int, error: str) -> None:
        """Mark the attempt's job failed."""
        await self.finish(pg, job_id, attempt, "status = 'failed', error = $3", error[:2000])

    async def beat(self, pg: asyncpg.Pool, job_id: str, attempt: int) -> bool:
        """Say the attempt's run is alive; False if the attempt no longer owns the job."""
        found = await pg.fetchval(
            f"UPDATE {self.table} SET heartbeat_at = now()"
            " WHERE id = $1 AND attempt = $2 AND status = 'running' RETURNING 1",
            job_id,
            attempt,
        )
        return found is not None

    async def stalled(self, pg: asyncpg.Pool, seconds: float) -> list[str]:
        """Running jobs whose run has not reported for seconds (its worker died)."""
        rows = await pg.fetch(
            f"SELECT id FROM {self.table} WHERE status = 'running'"
            " AND heartbeat_at < now() - make_interval(secs => $1)",
            seconds,
        )
        return [r["id"] for r in rows]
