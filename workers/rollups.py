"""The daily aggregates behind the ClickHouse fallback, computed through the query engine."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from services import config
from services.config import Settings
from services.errors import StoreUnavailable
from services.query import engine
from services.query.aggregates import AGGREGATED_DIMENSIONS, AggregateState, load_state
from services.query.engine import EventQuery, Row
from services.query.predicates import EVENT_KINDS
from services.stores.clickhouse import ClickHouse
from services.timerange import local_midnight

log = logging.getLogger("linkpulse.rollups")

# First key of the two-key advisory lock that keeps two runs off the same workspace.
LOCK_CLASS = 0x6C70
# "" holds the day's totals; the rest one row per value.
STORED_DIMENSIONS = ("", *AGGREGATED_DIMENSIONS)
AGGREGATE_COLUMNS = (
    "workspace_id",
    "dimension",
    "day",
    "link_id",
    "value",
    "clicks",
    "bot_clicks",
    "visitors",
    "bot_visitors",
    "leads",
    "bot_leads",
    "sales",
    "bot_sales",
)
REVENUE_COLUMNS = (
    "workspace_id",
    "dimension",
    "day",
    "link_id",
    "value",
    "currency",
    "amount",
    "bot_amount",
)
# Link id of the rows that hold every link of the workspace together.
ALL_LINKS = 0


@dataclass(frozen=True)
class RollupSettings:
    """How often the job runs and how much it does at once (see Settings' rollup_* fields)."""

    # Runs at the minutes of the hour divisible by this.
    every_minutes: int = 5
    # Days recomputed on every run, today included (more when the last run is older).
    recent_days: int = 2
    # Events (all kinds, bots included) computed and replaced in one transaction, about.
    chunk_events: int = 250_000
    # arq timeout of one run; a first backfill of a large workspace takes the longest.
    timeout_seconds: int = 3600

    @classmethod
    def from_settings(cls, settings: Settings) -> RollupSettings:
        """The rollup tunables of a deployment's settings."""
        return cls(
            every_minutes=settings.rollup_every_minutes,
            recent_days=settings.rollup_recent_days,
            chunk_events=settings.rollup_chunk_events,
            timeout_seconds=settings.rollup_timeout_seconds,
        )

    def minutes(self) -> set[int]:
        """The minutes of the hour the cron fires at."""
        return set(range(0, 60, max(1, min(self.every_minutes, 60))))


@dataclass(frozen=True)
class Workspace:
    """What the job needs of a workspace: its zone and how far back its plan reaches."""

    id: int
    timezone: str
    max_days: int


def history_days(max_days: int) -> int:
    """Days kept: the plan's longest window and the period of equal length before it."""
    return 2 * (max_days + 1)


@dataclass(frozen=True)
class Chunk:
    """Consecutive local days [first, last] replaced together, and the sale currencies in them."""

    first: date
    last: date
    events: int
    currencies: tuple[str, ...]


class _Days:
    """Local dates of the epoch-second bucket starts the engine returns, cached."""

    def __init__(self, tz: ZoneInfo) -> None:
        self.tz = tz
        self._seen: dict[int, date] = {}

    def __call__(self, epoch: int) -> date:
        found = self._seen.get(epoch)
        if found is None:
            found = self._seen[epoch] = datetime.fromtimestamp(epoch, self.tz).date()
        return found


def _text(value: Any) -> str:
    # PostgreSQL text cannot hold NUL; such values are kept with a replacement character.
    return str(value).replace("\x00", "\ufffd")


async def _probe(
    ch: ClickHouse, ws: Workspace, first: date, last: date, currencies: Iterable[str]
) -> tuple[dict[date, int], dict[date, set[str]]]:
    """Events per day (all kinds, bots included) and the currencies with revenue per day."""
    tz = ZoneInfo(ws.timezone)
    base = EventQuery(
        kind="clicks",
        workspace_id=ws.id,
        start=local_midnight(first, tz),
        end=local_midnight(last + timedelta(days=1), tz),
        group_by=("time",),
        granularity="day",
        tz=ws.timezone,
        include_bots=True,
    )
    day = _Days(tz)
    events: dict[date, int] = {}
    kinds = await asyncio.gather(*(engine.run(ch, replace(base, kind=k)) for k in EVENT_KINDS))
    for rows in kinds:
        for r in rows:
            events[day(r.key)] = events.get(day(r.key), 0) + r.events
    paid: dict[date, set[str]] = {}
    if not kinds[-1]:  # no sales: no revenue to look for (a quiet workspace costs 3 queries)
        return events, paid
    # One query per currency: the engine sums revenue over currencies, it does not group by them.
    codes = list(currencies)
    revenue = await asyncio.gather(
        *(engine.run(ch, replace(base, kind="sales", revenue_factors={c: 1.0})) for c in codes)
    )
    for code, rows in zip(codes, revenue, strict=True):
        for r in rows:
            if r.revenue:
                paid.setdefault(day(r.key), set()).add(code)
    return events, paid


def plan_chunks(
    first: date,
    last: date,
    events: dict[date, int],
    paid: dict[date, set[str]],
    chunk_events: int,
) -> list[Chunk]:
    """Split [first, last] into consecutive chunks of about chunk_events events each."""
    chunks = []
    start, count, codes = first, 0, set[str]()
    day = first
    while day <= last:
        here = events.get(day, 0)
        if count and count + here > chunk_events:
            chunks.append(Chunk(start, day - timedelta(days=1), count, tuple(sorted(codes))))
            start, count, codes = day, 0, set()
        count += here
        codes |= paid.get(day, set())
        day += timedelta(days=1)
    chunks.append(Chunk(start, last, count, tuple(sorted(codes))))
    return chunks


# Positions in an aggregate row's counters.
_CLICKS, _VISITORS, _LEADS, _SALES = 0, 2, 4, 6


def _split_bots(human: list[Row], everyone: list[Row]) -> Iterator[tuple[Any, int, int, int, int]]:
    """Per key: human events, what bots add, human visitors, what bots add to visitors."""
    people = {r.key: r for r in human}
    for r in everyone:
        h = people.get(r.key)
        events, visitors = (h.events, h.visitors) if h else (0, 0)
        yield r.key, events, r.events - events, visitors, r.visitors - visitors


async def _grouping(
    ch: ClickHouse, ws: Workspace, chunk: Chunk, dimension: str
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Aggregate and revenue records of one dimension ("" for totals), per link and all links."""
    tz = ZoneInfo(ws.timezone)
    day = _Days(tz)
    extra = (dimension,) if dimension else ()
    base = EventQuery(
        kind="clicks",
        workspace_id=ws.id,
        start=local_midnight(chunk.first, tz),
        end=local_midnight(chunk.last + timedelta(days=1), tz),
        group_by=("time", "link", *extra),
        granularity="day",
        tz=ws.timezone,
    )
    # Per link: every kind, without and with bots; revenue once per currency (whose rows also
    # count the sales). All links: clicks again (visitors do not add up over links); leads,
    # sales and revenue are the per-link sums.
    workspace_wide = replace(base, group_by=("time", *extra))
    queries: list[tuple[str, str, EventQuery]] = []
    for bots in (False, True):
        queries.append(("link", "clicks", replace(base, include_bots=bots)))
        queries.append(("link", "leads", replace(base, kind="leads", include_bots=bots)))
        queries.append(("all", "clicks", replace(workspace_wide, include_bots=bots)))
        if not chunk.currencies:
            queries.append(("link", "sales", replace(base, kind="sales", include_bots=bots)))
        for code in chunk.currencies:
            factors = {code: 1.0}
            sales = replace(base, kind="sales", include_bots=bots, revenue_factors=factors)
            queries.append(("link", f"sales:{code}", sales))
    results = await asyncio.gather(*(engine.run(ch, q) for _, _, q in queries))
    found = {
        (scope, what, q.include_bots): rows
        for (scope, what, q), rows in zip(queries, results, strict=True)
    }

    def place(scope: str, key: Any) -> tuple[date, int, str]:
        parts = key if isinstance(key, tuple) else (key,)
        link = int(parts[1]) if scope == "link" else ALL_LINKS
        return day(parts[0]), link, _text(parts[-1]) if dimension else ""

    counters: dict[tuple[date, int, str], list[int]] = {}

    def add(scope: str, what: str, position: int, per_link_too: bool) -> None:
        rows = _split_bots(found[(scope, what, False)], found[(scope, what, True)])
        for key, events, bot_events, visitors, bot_visitors in rows:
            at = place(scope, key)
            targets = [at, (at[0], ALL_LINKS, at[2])] if per_link_too else [at]
            for target in targets:
                slot = counters.setdefault(target, [0] * 8)
                slot[position] += events
                slot[position + 1] += bot_events
                if position == _CLICKS:
                    slot[_VISITORS] += visitors
                    slot[_VISITORS + 1] += bot_visitors

    add("link", "clicks", _CLICKS, per_link_too=False)
    add("all", "clicks", _CLICKS, per_link_too=False)
    add("link", "leads", _LEADS, per_link_too=True)
    add("link", f"sales:{chunk.currencies[0]}" if chunk.currencies else "sales", _SALES, True)

    amounts: dict[tuple[date, int, str, str], list[int]] = {}
    for code in chunk.currencies:
        human = {r.key: r.revenue for r in found[("link", f"sales:{code}", False)]}
        for r in found[("link", f"sales:{code}", True)]:
            at = place("link", r.key)
            mine = round(human.get(r.key, 0.0))
            added = round(r.revenue) - mine
            if not mine and not added:
                continue
            for link in (at[1], ALL_LINKS):
                slot = amounts.setdefault((at[0], link, at[2], code), [0, 0])
                slot[0] += mine
                slot[1] += added

    aggregates = [(ws.id, dimension, *at, *values) for at, values in counters.items()]
    revenue = [(ws.id, dimension, *at, *values) for at, values in amounts.items()]
    return aggregates, revenue


async def _replace_chunk(pg: asyncpg.Pool, ch: ClickHouse, ws: Workspace, chunk: Chunk) -> int:
    """Recompute the chunk's days and swap them in, in one transaction; returns rows written."""
    written = 0
    async with pg.acquire() as conn, conn.transaction():
        for table in ("daily_aggregates", "daily_revenue"):
            await conn.execute(
                f"DELETE FROM {table} WHERE workspace_id = $1 AND dimension = ANY($2::text[])"
                " AND day >= $3 AND day <= $4",
                ws.id,
                list(STORED_DIMENSIONS),
                chunk.first,
                chunk.last,
            )
        if not chunk.events:
            return 0
        # One dimension at a time keeps memory to one grouping's rows.
        for dimension in STORED_DIMENSIONS:
            aggregates, revenue = await _grouping(ch, ws, chunk, dimension)
            if aggregates:
                await conn.copy_records_to_table(
                    "daily_aggregates", records=aggregates, columns=AGGREGATE_COLUMNS
                )
            if revenue:
                await conn.copy_records_to_table(
                    "daily_revenue", records=revenue, columns=REVENUE_COLUMNS
                )
            written += len(aggregates) + len(revenue)
    return written


async def _drop_rows(conn: asyncpg.Connection, workspace_id: int, before: date | None) -> None:
    for table in ("daily_aggregates", "daily_revenue"):
        if before is None:
            await conn.execute(f"DELETE FROM {table} WHERE workspace_id = $1", workspace_id)
        else:
            await conn.execute(
                f"DELETE FROM {table} WHERE workspace_id = $1 AND dimension = ANY($2::text[])"
                " AND day < $3",
                workspace_id,
                list(STORED_DIMENSIONS),
                before,
            )


def _ranges(
    state: AggregateState | None, ws: Workspace, today: date, wanted_from: date, recent: int
) -> list[tuple[date, date]]:
    """The day ranges a run recomputes: everything at first, else what is missing or recent."""
    if state is None or state.timezone != ws.timezone or state.refreshed_at is None:
        return [(wanted_from, today)]
    ranges = []
    if state.covered_from > wanted_from:  # a longer plan: backfill the older days
        ranges.append((wanted_from, state.covered_from - timedelta(days=1)))
    last_run = state.refreshed_at.astimezone(ZoneInfo(ws.timezone)).date()
    since = max(wanted_from, min(today - timedelta(days=recent - 1), last_run))
    ranges.append((since, today))
    return ranges


async def refresh_workspace(
    pg: asyncpg.Pool,
    ch: ClickHouse,
    ws: Workspace,
    settings: RollupSettings,
    now: datetime | None = None,
) -> dict[str, Any] | None:
    """Bring one workspace's aggregates up to date as of now; None when another run holds it."""
    began = time.monotonic()
    now = now or datetime.now(UTC)
    tz = ZoneInfo(ws.timezone)
    today = now.astimezone(tz).date()
    wanted_from = today - timedelta(days=history_days(ws.max_days) - 1)
    async with pg.acquire() as lock:
        key = ws.id % 2**31
        if not await lock.fetchval("SELECT pg_try_advisory_lock($1, $2)", LOCK_CLASS, key):
            return None
        try:
            state = await load_state(lock, ws.id)
            ranges = _ranges(state, ws, today, wanted_from, settings.recent_days)
            if state is None or state.timezone != ws.timezone or state.refreshed_at is None:
                # Start over: the state row first (refreshed_at NULL: not ready), no old rows.
                async with lock.transaction():
                    await _drop_rows(lock, ws.id, None)
                    await lock.execute(
                        "INSERT INTO daily_aggregate_state (workspace_id, timezone, covered_from)"
                        " VALUES ($1, $2, $3) ON CONFLICT (workspace_id) DO UPDATE SET"
                        " timezone = $2, covered_from = $3, refreshed_at = NULL",
                        ws.id,
                        ws.timezone,
                        wanted_from,
                    )
            currencies = [
                r["code"].strip() for r in await lock.fetch("SELECT code FROM currencies")
            ]
            chunks = rows = 0
            for first, last in ranges:
                events, paid = await _probe(ch, ws, first, last, currencies)
                for chunk in plan_chunks(first, last, events, paid, settings.chunk_events):
                    rows += await _replace_chunk(pg, ch, ws, chunk)
                    chunks += 1
            seconds = time.monotonic() - began
            async with lock.transaction():
                await _drop_rows(lock, ws.id, wanted_from)  # days that left the plan's history
                await lock.execute(
                    "UPDATE daily_aggregate_state SET covered_from = $2, refreshed_at = $3,"
                    " run_seconds = $4 WHERE workspace_id = $1",
                    ws.id,
                    wanted_from,
                    now,
                    seconds,
                )
        finally:
            await lock.execute("SELECT pg_advisory_unlock($1, $2)", LOCK_CLASS, key)
    days = sum((last - first).days + 1 for first, last in ranges)
    log.info(
        "daily aggregates of workspace %s: %d days in %d chunks, %d rows, %.2fs",
        ws.id,
        days,
        chunks,
        rows,
        seconds,
    )
    return {"days": days, "chunks": chunks, "rows": rows, "seconds": round(seconds, 3)}


async def drop_deleted_workspaces(pg: asyncpg.Pool) -> list[int]:
    """Remove the aggregates of workspaces that no longer exist; returns their ids."""
    gone = [
        r["workspace_id"]
        for r in await pg.fetch(
            "SELECT s.workspace_id FROM daily_aggregate_state s"
            " LEFT JOIN workspaces w ON w.id = s.workspace_id WHERE w.id IS NULL"
        )
    ]
    for workspace_id in gone:
        async with pg.acquire() as conn, conn.transaction():
            await _drop_rows(conn, workspace_id, None)
            await conn.execute(
                "DELETE FROM daily_aggregate_state WHERE workspace_id = $1", workspace_id
            )
    return gone


async def load_workspaces(
    pg: asyncpg.Pool, workspace_ids: Iterable[int] | None = None
) -> list[Workspace]:
    """Every workspace (or the given ones) with its zone and its plan's history."""
    sql = "SELECT w.id, w.timezone, p.max_days FROM workspaces w JOIN plans p ON p.code = w.plan"
    if workspace_ids is None:
        rows = await pg.fetch(sql + " ORDER BY w.id")
    else:
        rows = await pg.fetch(
            sql + " WHERE w.id = ANY($1::bigint[]) ORDER BY w.id", list(workspace_ids)
        )
    return [Workspace(r["id"], r["timezone"], r["max_days"]) for r in rows]


async def refresh_daily_aggregates(
    ctx: dict[str, Any], workspace_ids: list[int] | None = None
) -> dict[str, Any]:
    """The arq job: refresh every workspace's daily aggregates (recent days; all at first)."""
    pg: asyncpg.Pool = ctx["pg"]
    ch: ClickHouse = ctx["ch"]
    settings: RollupSettings = ctx.get("rollup_settings") or RollupSettings.from_settings(
        config.load()
    )
    dropped = await drop_deleted_workspaces(pg)
    refreshed: dict[int, Any] = {}
    failed: dict[int, str] = {}
    for ws in await load_workspaces(pg, workspace_ids):
        try:
            outcome = await refresh_workspace(pg, ch, ws, settings)
        except StoreUnavailable as exc:
            # Nothing was replaced: the aggregates keep answering as of their last refresh.
            log.warning("daily aggregates not refreshed, ClickHouse is unreachable: %s", exc)
            return {
                "refreshed": refreshed,
                "failed": failed,
                "dropped": dropped,
                "stopped": str(exc),
            }
        except Exception as exc:  # one workspace's failure must not starve the others
            log.exception("daily aggregates of workspace %s failed", ws.id)
            failed[ws.id] = f"{type(exc).__name__}: {exc}"
            continue
        if outcome is not None:
            refreshed[ws.id] = outcome
    return {"refreshed": refreshed, "failed": failed, "dropped": dropped}
