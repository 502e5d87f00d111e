"""Runs EventQuerys on ClickHouse, or on the daily aggregates when ClickHouse is unreachable."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from services.errors import StoreUnavailable
from services.query import engine
from services.query.engine import EventQuery, Row
from services.stores.clickhouse import ClickHouse


class Fallback(Protocol):
    """A second source able to answer some EventQuerys (raises ApiError UNAVAILABLE otherwise)."""

    async def run(self, q: EventQuery) -> tuple[list[Row], datetime]:
        """Rows for q and the time the source was last refreshed."""
        ...

    def notices(self, q: EventQuery) -> list[str]:
        """What the response should say about an answer to q from this source."""
        ...


@dataclass
class Sources:
    """Where the answers of one request came from, for ResponseMeta."""

    fallback_as_of: datetime | None = None
    notices: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        """ "clickhouse", or "aggregates" when any part came from the fallback."""
        return "clickhouse" if self.fallback_as_of is None else "aggregates"


class Executor:
    """Executes event queries for one request and records which source answered."""

    def __init__(
        self,
        ch: ClickHouse,
        fallback: Fallback | None = None,
        on_fallback: Callable[[], None] = lambda: None,
    ) -> None:
        self.ch = ch
        self.fallback = fallback
        self.sources = Sources()
        # Called once when the fallback first answers (the servicer marks the call uncacheable).
        self._on_fallback = on_fallback

    async def run(self, q: EventQuery) -> list[Row]:
        """Rows of q from ClickHouse; from the fallback when ClickHouse is down and it can."""
        try:
            return await engine.run(self.ch, q)
        except StoreUnavailable:
            if self.fallback is None:
                raise
        rows, as_of = await self.fallback.run(q)
        if self.sources.fallback_as_of is None:
            self._on_fallback()
        if self.sources.fallback_as_of is None or as_of < self.sources.fallback_as_of:
            self.sources.fallback_as_of = as_of
        for notice in self.fallback.notices(q):
            if notice not in self.sources.notices:
                self.sources.notices.append(notice)
        return rows
