"""PostgreSQL unreachable (the suite's own cluster stopped): reads, ingest, exports, audit, auth."""

from __future__ import annotations

import asyncio

import pytest

from tests.chaos.conftest import DAY, Sender, Stack, assert_envelope, assert_exact, clicks, until

WINDOW = {"start": DAY, "end": DAY, "timezone": "UTC"}


@pytest.mark.fault("postgresql", "crash (pg_ctl -m immediate): reads, ingest, exports, audit, auth")
async def test_postgres_down_is_503_then_recovers(healthy: Stack, http, tenant, note) -> None:
    stack = healthy
    t = await tenant()
    await Sender(stack.settings.live_addr, t).send(clicks(t, 20_000_000, 500))
    await stack.drained()
    calls = {
        "read": ("GET", "/api/analytics/workspace/overview", {"params": WINDOW}),
        "ingest": ("POST", "/api/track/click", {"json": {"linkId": t.link_ids[0], "eventId": 1}}),
        "export": ("POST", "/api/analytics/exports", {"params": {**WINDOW, "dataset": "clicks"}}),
        "audit": ("GET", "/api/analytics/audit-log", {}),
    }
    stack.postgres.stop("immediate")
    try:
        await asyncio.sleep(1.5)  # past AUTH_CACHE_SECONDS: the key must be looked up again
        seen = {}
        for what, (method, path, kwargs) in calls.items():
            r = await http.request(method, path, headers=t.headers, **kwargs)
            seen[what] = r.status_code
            assert_envelope(r, (200, 503))
        # An unknown key cannot be judged either: 503, not 401.
        r = await http.get(
            calls["read"][1], params=WINDOW, headers={"Authorization": "Bearer lp_unknown"}
        )
        seen["auth (unknown key)"] = r.status_code
        assert_envelope(r, (503,))
        note("while down: " + ", ".join(f"{k} {v}" for k, v in seen.items()))
        assert all(v == 503 for k, v in seen.items() if k != "read"), seen
    finally:
        stack.postgres.start()

    async def answers() -> bool:
        r = await http.get(calls["read"][1], params=WINDOW, headers=t.headers)
        assert_envelope(r)
        return r.status_code == 200 and r.json()["data"]["totals"]["clicks"] == 500

    note(f"reads right {await until('reads', answers, 30):.1f}s after the restart")
    for what in ("ingest", "export", "audit"):
        method, path, kwargs = calls[what]
        r = await http.request(method, path, headers=t.headers, **kwargs)
        assert r.status_code in (200, 202), (what, r.text)
    await assert_exact(stack, t, 501, note)
