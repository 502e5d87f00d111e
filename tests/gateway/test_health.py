"""/healthz's backend checks run in the background: requests share the last result."""

from __future__ import annotations

import asyncio

import pytest

from gateway.health import HealthMonitor, health_body


class Checks:
    """A backend check that counts its runs and takes a moment."""

    def __init__(self) -> None:
        self.runs = 0
        self.status = "SERVING"

    async def __call__(self) -> dict[str, str]:
        self.runs += 1
        await asyncio.sleep(0.05)
        return {"query": self.status}


@pytest.mark.asyncio(loop_scope="session")
async def test_requests_share_the_background_check() -> None:
    checks = Checks()
    monitor = HealthMonitor(checks, interval=0.2)
    monitor.start()
    try:
        answers = await asyncio.gather(*(monitor.statuses() for _ in range(200)))
        assert checks.runs <= 2
        assert {tuple(statuses.items()) for statuses, _age in answers} == {(("query", "SERVING"),)}
        checks.status = "NOT_SERVING"
        await asyncio.sleep(0.5)
        statuses, age = await monitor.statuses()
        assert statuses == {"query": "NOT_SERVING"}
        assert 0 <= age < 0.5
        assert checks.runs <= 6
    finally:
        await monitor.stop()


@pytest.mark.asyncio(loop_scope="session")
async def test_a_result_too_old_is_checked_again_in_the_request() -> None:
    checks = Checks()
    monitor = HealthMonitor(checks, interval=0.05)  # never started: no background loop
    await monitor.statuses()
    await asyncio.sleep(0.2)
    await monitor.statuses()
    assert checks.runs == 2


def test_body_carries_the_age_of_the_check() -> None:
    status, body = health_body({"query": "SERVING", "live": "UNAVAILABLE"}, 0.4567)
    assert status == 503
    assert body == {
        "success": True,
        "data": {
            "status": "degraded",
            "services": {"query": "SERVING", "live": "UNAVAILABLE"},
            "ageSeconds": 0.457,
        },
    }
