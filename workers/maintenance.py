"""Periodic clean-up jobs."""

from __future__ import annotations

from typing import Any


async def purge_expired_sessions(ctx: dict[str, Any]) -> int:
    """Delete sessions that expired or were revoked more than a day ago; returns how many."""
    done = await ctx["pg"].execute(
        "DELETE FROM sessions WHERE expires_at < now() - interval '1 day'"
        " OR revoked_at < now() - interval '1 day'"
    )
    return int(done.split()[-1])
