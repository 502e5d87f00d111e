"""The SQL the query engine runs for a route, captured from the route's own preset.

The route's RPC runs in-process (QueryServicer over a ClickHouse facade that records every
statement): its presets resolve the request (services.query.params.resolve) and run each
EventQuery through the engine, so the captured statements are exactly `engine.compile_query`'s
output for the route. Statements issued together (the presets' asyncio.gather) form one stage;
`run` replays the stages in order, each stage's statements concurrently, as the preset does.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format

from services import protos
from services.auth import principal as principal_mod
from services.auth.principal import Principal
from services.query import params
from services.query.params import QueryContext
from services.query.servicer import QueryServicer
from services.stores.clickhouse import ClickHouse
from services.stores.deps import Deps
from tests.bench.routes import Route

Statement = tuple[str, dict[str, Any]]


class RecordingClickHouse(ClickHouse):
    """A ClickHouse facade that runs and records every SELECT, grouped into concurrent stages."""

    def __init__(self, base: ClickHouse) -> None:
        super().__init__(base.target)
        self.stages: list[list[Statement]] = []
        self._stage_done = True

    async def fetch(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Rows of the statement; a statement issued after one has finished opens a new stage."""
        if self._stage_done:
            self.stages.append([])
            self._stage_done = False
        self.stages[-1].append((sql, dict(params or {})))
        try:
            return await super().fetch(sql, params)
        finally:
            self._stage_done = True


class _Context:
    """The little of a grpc.aio.ServicerContext the presets touch."""

    def set_trailing_metadata(self, metadata: object) -> None:
        """Trailers go nowhere in-process."""


@dataclass(frozen=True)
class EnginePlan:
    """A route's resolved context and the engine's statements for it, in stages."""

    ctx: QueryContext
    stages: list[list[Statement]]

    @property
    def statements(self) -> int:
        """How many statements one request runs."""
        return sum(len(stage) for stage in self.stages)

    def tables(self) -> list[str]:
        """The tables the statements read, in order of first use."""
        found: list[str] = []
        for stage in self.stages:
            for sql, _ in stage:
                for name in re.findall(r"\bFROM (\w+)", sql):
                    if name not in found:
                        found.append(name)
        return found


def request(route: Route, link_id: int) -> protos.common_pb2.AnalyticsQuery:
    """The AnalyticsQuery the gateway binds from the route's path and query."""
    message = json_format.ParseDict(route.query, protos.common_pb2.AnalyticsQuery())
    if route.per_link:
        message.link_id = link_id
    return message


async def capture(deps: Deps, caller: Principal, route: Route, link_id: int) -> EnginePlan:
    """Run the route's RPC in-process and return the statements its presets sent to ClickHouse."""
    recorder = RecordingClickHouse(deps.ch)
    local = Deps(deps.settings, deps.pg, recorder, deps.redis, deps.fx)
    message = request(route, link_id)
    token = principal_mod.bind(caller)
    try:
        ctx = await params.resolve(local, caller, message)
        await getattr(QueryServicer(local), route.rpc)(message, _Context())
    finally:
        principal_mod.unbind(token)
        recorder.close()
    return EnginePlan(ctx, recorder.stages)


async def run(ch: ClickHouse, plan: EnginePlan) -> None:
    """Run the plan's statements on ClickHouse: stage after stage, each stage concurrently."""
    for stage in plan.stages:
        await asyncio.gather(*(ch.fetch(sql, args) for sql, args in stage))
