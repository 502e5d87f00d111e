"""Backend health through the standard gRPC health service (grpc.health.v1), checked in the
background so that /healthz costs a request nothing but its answer."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.singleflight import SingleFlight

logger = logging.getLogger(__name__)

SERVING = "SERVING"


async def check_service(channel: grpc.aio.Channel, service_name: str, deadline: float) -> str:
    """The status name of one backend: SERVING, NOT_SERVING, ... or the gRPC error code name."""
    stub = health_pb2_grpc.HealthStub(channel)
    try:
        try:
            reply = await stub.Check(
                health_pb2.HealthCheckRequest(service=service_name), timeout=deadline
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND:
                raise
            # The server does not report this service by name: ask for the server as a whole.
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=deadline)
    except grpc.aio.AioRpcError as exc:
        return str(exc.code().name)
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


async def check_copies(
    copies: Sequence[grpc.aio.Channel], service_name: str, deadline: float
) -> str:
    """SERVING when any copy of a service serves, else the first copy's status name."""
    statuses = await asyncio.gather(
        *(check_service(channel, service_name, deadline) for channel in copies)
    )
    return SERVING if SERVING in statuses else statuses[0]


async def check_backends(
    channels: Mapping[str, grpc.aio.Channel | Sequence[grpc.aio.Channel]],
    service_names: Mapping[str, str],
    deadline: float,
) -> dict[str, str]:
    """Status name of every backend (a channel, or one per copy: up when any copy serves),
    checked concurrently."""
    keys = list(channels)
    statuses = await asyncio.gather(
        *(check_copies(_copies(channels[key]), service_names[key], deadline) for key in keys)
    )
    return dict(zip(keys, statuses, strict=True))


def _copies(
    channels: grpc.aio.Channel | Sequence[grpc.aio.Channel],
) -> Sequence[grpc.aio.Channel]:
    return channels if isinstance(channels, Sequence) else (channels,)


def health_body(
    statuses: Mapping[str, str], age_seconds: float = 0.0
) -> tuple[int, dict[str, object]]:
    """HTTP status (200 or 503) and the /healthz envelope of backend statuses checked
    age_seconds ago."""
    healthy = all(status == SERVING for status in statuses.values())
    data = {
        "status": "ok" if healthy else "degraded",
        "services": dict(statuses),
        "ageSeconds": round(age_seconds, 3),
    }
    return (200 if healthy else 503), {"success": True, "data": data}


class HealthMonitor:
    """Checks the backends every interval in the background; /healthz serves the last result.

    The first caller waits for the first check; a result older than three intervals (the loop
    stalled) is checked again in the request."""

    def __init__(
        self,
        check: Callable[[], Awaitable[dict[str, str]]],
        interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._check = check
        self._interval = max(0.05, interval)
        self._clock = clock
        self._last: tuple[float, dict[str, str]] | None = None
        self._task: asyncio.Task[None] | None = None
        self._checking = SingleFlight[dict[str, str]]()

    def start(self) -> None:
        """Start checking in the background (in the running loop)."""
        if self._task is None:
            self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        """Stop the background checks."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self._checking.aclose()

    async def statuses(self) -> tuple[dict[str, str], float]:
        """The last statuses and their age in seconds."""
        last = self._last
        if last is None or self._clock() - last[0] > 3 * self._interval:
            await self._refresh()
            last = self._last
            assert last is not None
        return last[1], max(0.0, self._clock() - last[0])

    async def _refresh(self) -> None:
        async def check() -> dict[str, str]:
            statuses = await self._check()
            self._last = (self._clock(), statuses)
            return statuses

        await self._checking.run("backends", check)

    async def _loop(self) -> None:
        while True:
            try:
                await self._refresh()
            except Exception:  # noqa: BLE001 - the next round tries again; /healthz checks inline
                logger.exception("backend health check failed")
            await asyncio.sleep(self._interval)
