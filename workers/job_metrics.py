"""Recording how the worker's export and batch runs end: state, duration and rows."""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from services.telemetry import measure

Job = TypeVar("Job", bound=Callable[..., Awaitable[dict[str, Any]]])

# A run's result status -> the state it counts as; others (skipped: already finished or
# cancelled; superseded: another attempt owns the job) end nothing of their own.
_STATES = {"succeeded": "done", "failed": "failed"}


def records_run(kind: str) -> Callable[[Job], Job]:
    """Decorate an arq job whose result is {"status", and "rows" or "items"}: count the run as
    done or failed, with its duration and rows (a raised Retry is no end: the job runs again)."""

    def decorate(job: Job) -> Job:
        @functools.wraps(job)
        async def recorded(ctx: dict[str, Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
            start = time.monotonic()
            result = await job(ctx, *args, **kwargs)
            state = _STATES.get(str(result.get("status")))
            if state is not None:
                rows = int(result.get("rows", result.get("items", 0)) or 0)
                measure.job_finished(kind, state, time.monotonic() - start, rows)
            return result

        return cast(Job, recorded)

    return decorate
