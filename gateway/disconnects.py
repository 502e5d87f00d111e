"""Reads abandoned with their client: a GET whose client has gone away stops occupying the
service (under overload its queue would otherwise outlive every client). Writes always run to
their end (the pipeline only watches GET routes)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from starlette.requests import Request
from starlette.types import Receive

from gateway.http_errors import GatewayError

T = TypeVar("T")

_DETACHED_STATE = "detached"


class ClientGone(GatewayError):
    """The client closed the connection before its answer (nginx's 499; nobody receives it)."""

    def __init__(self) -> None:
        super().__init__(499, "client_closed_request", "the client closed the connection")


def detach(request: Request) -> None:
    """Let request's backend call run to its end even if its client goes away (other requests
    wait for its answer)."""
    setattr(request.state, _DETACHED_STATE, True)


def is_detached(request: Request) -> bool:
    """True when request's call outlives its client."""
    return bool(getattr(request.state, _DETACHED_STATE, False))


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def unless_disconnected(call: Awaitable[T], request: Request) -> T:
    """call's result; cancels it and raises ClientGone if request's client goes away first."""
    if is_detached(request):
        return await call
    task = asyncio.ensure_future(call)
    watcher = asyncio.ensure_future(_disconnected(request.receive))
    try:
        await asyncio.wait((task, watcher), return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            return task.result()
        raise ClientGone()
    finally:
        watcher.cancel()
        if not task.done():
            task.cancel()
