"""The engine's SQL on a current ClickHouse: the migrations applied to chdb (ClickHouse 26.x,
in-process), the e2e dataset loaded into both it and the 18.16 server, and every statement that
every analytics route, the raw-events route, an export and the daily-aggregates job send to
ClickHouse answering the same on both."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import chdb
import chdb.session
import pytest
from google.protobuf import json_format
from google.protobuf.message import Message

from services import protos
from services.auth import principal as principal_mod
from services.auth.resolver import TokenResolver
from services.errors import ApiError
from services.export.sql import ExportQuery, compile_export
from services.money import FxTable
from services.query.listings import LIST_COLUMNS
from services.query.servicer import QueryServicer
from services.stores.clickhouse import ClickHouse, ClickHouseTarget
from services.stores.clickhouse_http import render
from services.stores.deps import Deps
from services.stores.migrate import apply_clickhouse, load
from services.stores.redisclient import create_redis
from tests.e2e import dataset as d
from workers.rollups import RollupSettings, load_workspaces, refresh_workspace

KINDS = ("clicks", "leads", "sales")
# Sales revenue is a float sum whose order differs between servers.
RELATIVE_TOLERANCE = 1e-9
Statement = tuple[str, dict[str, Any]]


class ChdbClickHouse(ClickHouse):
    """The facade's calls on one database of an in-process chdb session."""

    def __init__(self, session: chdb.session.Session, database: str) -> None:
        super().__init__(ClickHouseTarget("chdb", 0, "default", "", database), pool_size=1)
        self.session = session
        session.query(f"CREATE DATABASE IF NOT EXISTS {database}")
        session.query(f"USE {database}")

    def _rows(self, sql: str) -> list[tuple[Any, ...]]:
        table = self.session.query(sql, "ArrowTable")
        return list(zip(*(column.to_pylist() for column in table.columns), strict=True))

    async def fetch(
        self,
        sql: str,
        params: dict[str, Any] | None = None,
        settings: dict[str, Any] | None = None,
    ) -> list[tuple[Any, ...]]:
        """Rows of a SELECT, its parameters substituted as the driver does (settings unused)."""
        return self._rows(render(sql, params or {}))

    async def command(self, sql: str, settings: dict[str, Any] | None = None) -> None:
        """Run a statement; a current server needs no version-specific settings."""
        assert not settings, f"a current ClickHouse got legacy settings {settings}"
        self.session.query(sql)

    async def insert(self, table: str, columns: Any, rows: Any) -> int:
        """Insert rows (tuples in columns order) as JSON lines."""
        data = [dict(zip(columns, row, strict=True)) for row in rows]
        if data:
            body = "\n".join(json.dumps(row, default=str) for row in data)
            names = ", ".join(columns)
            self.session.query(f"INSERT INTO {table} ({names}) FORMAT JSONEachRow\n{body}")
        return len(data)


class RecordingClickHouse(ClickHouse):
    """The 18.16 facade, recording every SELECT with its parameters and answer."""

    def __init__(self, base: ClickHouse) -> None:
        super().__init__(base.target, pool_size=4)
        self.answers: list[tuple[str, dict[str, Any], list[tuple[Any, ...]]]] = []

    async def fetch(
        self,
        sql: str,
        params: dict[str, Any] | None = None,
        settings: dict[str, Any] | None = None,
    ) -> list[tuple[Any, ...]]:
        """Rows of the statement, recorded."""
        rows = await super().fetch(sql, params, settings)
        self.answers.append((sql, dict(params or {}), rows))
        return rows


class _Context:
    """The little of a grpc.aio.ServicerContext the handlers touch."""

    def set_trailing_metadata(self, metadata: object) -> None:
        """Trailers go nowhere in-process."""


def _normal(value: Any) -> Any:
    """A value as both servers' answers can be compared (times as epoch seconds)."""
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return int(moment.timestamp())
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):  # chdb's Arrow tuples
        return tuple(_normal(v) for v in value.values())
    if isinstance(value, list | tuple):
        return tuple(_normal(v) for v in value)
    if isinstance(value, bool):
        return int(value)
    return value


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return abs(float(a) - float(b)) <= RELATIVE_TOLERANCE * max(abs(float(a)), 1.0)
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _rows(rows: list[tuple[Any, ...]], ordered: bool) -> list[tuple[Any, ...]]:
    found = [tuple(_normal(v) for v in row) for row in rows]
    return found if ordered else sorted(found, key=repr)


@dataclass
class Servers:
    """The dataset on both servers, and the tools to run routes on 18.16."""

    ds: d.Dataset
    server: ClickHouse
    current: ChdbClickHouse
    deps: Deps


@pytest.fixture(scope="module")
async def servers(system, pg, ch) -> Any:
    """The e2e dataset on the 18.16 server and the same rows in a migrated chdb database."""
    ds = await d.build(pg, ch)
    session = chdb.session.Session()
    current = ChdbClickHouse(session, "linkpulse_current")
    applied = await apply_clickhouse(current)
    assert applied == [f"clickhouse/{m.name}" for m in load("clickhouse")]
    for kind in KINDS:
        columns = await _stored_columns(ch, kind)
        rows = await ch.fetch(
            f"SELECT {', '.join(columns)} FROM {kind} WHERE workspace_id = %(ws)s",
            {"ws": ds.ws.workspace_id},
        )
        await current.insert(kind, columns, [tuple(_json(v) for v in row) for row in rows])
    redis = create_redis(system.settings.redis_url)
    deps = Deps(system.settings, pg, ch, redis, FxTable(pg))
    try:
        yield Servers(ds, ch, current, deps)
    finally:
        await redis.aclose()
        session.close()


def _json(value: Any) -> Any:
    return int(value.replace(tzinfo=UTC).timestamp()) if isinstance(value, datetime) else value


async def _stored_columns(ch: ClickHouse, table: str) -> list[str]:
    """The columns an insert names (MATERIALIZED ones are computed by the server)."""
    rows = await ch.fetch(
        "SELECT name FROM system.columns WHERE database = currentDatabase() AND table = %(t)s"
        " AND default_kind != 'MATERIALIZED'",
        {"t": table},
    )
    return [str(r[0]) for r in rows]


def _requests(ds: d.Dataset) -> Iterator[tuple[str, Message]]:
    """(RPC, request) for every analytics RPC over ranges, zones, filters, scopes and sorts."""
    service = protos.query_pb2.DESCRIPTOR.services_by_name["QueryService"]
    rule = ds.rules[0]
    variants: list[dict[str, Any]] = [
        {},
        {"days": 30},
        {"days": 90, "granularity": "day", "include_bots": True, "currency": "USD"},
        {"days": 7, "granularity": "hour", "timezone": "Asia/Kolkata", "country": "DE"},
        {"days": 60, "granularity": "month", "timezone": "America/New_York", "sort": "visitors"},
        {"days": 30, "campaign_id": ds.campaigns["Spring"], "sort": "revenue", "limit": 3},
        {"days": 30, "tag_id": ds.tags["vip"], "device": "mobile", "by": "browser"},
        {"days": 30, "folder_id": ds.folders["Promo"], "dimension": "country"},
    ]
    for method in service.methods:
        if method.input_type.name != "AnalyticsQuery":
            continue
        for variant in variants:
            fields = dict(variant)
            if method.name.startswith("GetLink"):
                fields["link_id"] = rule["link_id"]
                fields.pop("campaign_id", None), fields.pop("tag_id", None)
                fields.pop("folder_id", None)
                if method.name == "GetLinkRuleConditions":
                    fields["rule_id"] = rule["id"]
            yield method.name, protos.common_pb2.AnalyticsQuery(**fields)
    today = datetime.now(UTC).date()
    for include_bots in (False, True):
        yield (
            "GetRawEvents",
            protos.query_pb2.RawEventsRequest(
                start=(today - timedelta(days=60)).isoformat(),
                end=today.isoformat(),
                include_bots=include_bots,
                limit=50,
            ),
        )


async def _compare(
    current: ChdbClickHouse, answers: list[tuple[str, dict[str, Any], list[tuple[Any, ...]]]]
) -> list[str]:
    """Each recorded statement run on chdb; what differs, described."""
    differences = []
    for sql, params, expected in answers:
        got = await current.fetch(sql, params)
        ordered = " ORDER BY " in sql
        want, have = _rows(expected, ordered), _rows(got, ordered)
        if len(want) != len(have) or not all(_same(a, b) for a, b in zip(want, have, strict=True)):
            differences.append(f"{sql} {params}\n  18.16: {want[:5]}\n  chdb: {have[:5]}")
    return differences


async def test_every_route_answers_the_same_on_a_current_clickhouse(servers: Servers):
    recorder = RecordingClickHouse(servers.server)
    deps = Deps(servers.deps.settings, servers.deps.pg, recorder, servers.deps.redis,
                servers.deps.fx)  # fmt: skip
    servicer = QueryServicer(deps)
    caller = await TokenResolver(deps.pg).resolve(servers.ds.ws.key)
    answered: dict[str, int] = {}
    token = principal_mod.bind(caller)
    try:
        for rpc, request in _requests(servers.ds):
            before = len(recorder.answers)
            try:
                await getattr(servicer, rpc)(request, _Context())
            except ApiError:
                continue  # a field this RPC does not take: another variant covers it
            answered[rpc] = answered.get(rpc, 0) + len(recorder.answers) - before
    finally:
        principal_mod.unbind(token)
        recorder.close()
    analytics = {
        m.name
        for m in protos.query_pb2.DESCRIPTOR.services_by_name["QueryService"].methods
        if m.input_type.name == "AnalyticsQuery"
    }
    assert analytics | {"GetRawEvents"} <= set(answered), sorted(analytics - set(answered))
    assert len(recorder.answers) > 200
    assert await _compare(servers.current, recorder.answers) == []


def _queries(ds: d.Dataset) -> Iterator[dict[str, Any]]:
    """Query API requests over several dimensions at once and filter trees."""
    spring, vip = ds.campaigns["Spring"], ds.tags["vip"]
    tree = {
        "or": [
            {"dimension": "city", "op": "starts_with", "values": ["Mü", "Lon"]},
            {"and": [
                {"dimension": "referrer", "op": "contains", "values": ["."]},
                {"not": {"dimension": "tag", "op": "is", "values": [str(vip)]}},
            ]},
            {"dimension": "campaign", "op": "contains", "values": ["Aut"]},
        ]
    }  # fmt: skip
    window = {"start": "2026-03-01", "end": "2026-04-10"}
    yield {"metrics": ["clicks", "visitors"], "dimensions": ["country", "device"], **window}
    yield {
        "metrics": ["clicks", "visitors", "leads", "sales", "revenue"],
        "dimensions": ["campaign", "folder", "tag", "time:week"],
        "filters": tree,
        "compare": "previous_period",
        **window,
    }
    yield {
        "metrics": ["clicks", "revenue"],
        "dimensions": ["tag", "link"],
        "filters": {"dimension": "campaign", "op": "is", "values": [str(spring)]},
        "timezone": "Asia/Kolkata",
        **window,
    }
    yield {
        "metrics": ["clicks"],
        "dimensions": ["rule", "time:hour"],
        "filters": {"not": {"dimension": "rule", "op": "contains", "values": ["news"]}},
        "start": "2026-03-28",
        "end": "2026-03-30",
    }


async def test_the_query_api_answers_the_same_on_a_current_clickhouse(servers: Servers):
    recorder = RecordingClickHouse(servers.server)
    deps = Deps(servers.deps.settings, servers.deps.pg, recorder, servers.deps.redis,
                servers.deps.fx)  # fmt: skip
    servicer = QueryServicer(deps)
    caller = await TokenResolver(deps.pg).resolve(servers.ds.ws.key)
    token = principal_mod.bind(caller)
    try:
        for body in _queries(servers.ds):
            request = json_format.ParseDict(body, protos.analytics_query_pb2.QueryRequest())
            answer = await servicer.Query(request, _Context())
            assert answer.rows, body
    finally:
        principal_mod.unbind(token)
        recorder.close()
    assert len(recorder.answers) >= 10
    assert sum(len(rows) for _, _, rows in recorder.answers) > 50
    assert await _compare(servers.current, recorder.answers) == []


async def test_exports_answer_the_same_on_a_current_clickhouse(servers: Servers):
    ws = servers.ds.ws
    now = datetime.now(UTC)
    answers = []
    for kind in KINDS:
        for fmt in ("csv", "ndjson"):
            q = ExportQuery(
                kind=kind,
                workspace_id=ws.workspace_id,
                start=now - timedelta(days=90),
                end=now,
                columns=LIST_COLUMNS[kind],
                fmt=fmt,
                link_ids=tuple(ws.link_ids[:2]) if fmt == "ndjson" else None,
            )
            sql, params = compile_export(q)
            select = sql.rsplit(" FORMAT ", 1)[0]  # rows compared, not the server's formatting
            answers.append((select, params, await servers.server.fetch(select, params)))
            # The whole statement, FORMAT included, runs on the current server too.
            servers.current.session.query(render(sql, params), "CSV")
    assert sum(len(rows) for _, _, rows in answers) > 0
    assert await _compare(servers.current, answers) == []


async def test_the_daily_aggregates_job_reads_the_same_on_a_current_clickhouse(servers: Servers):
    recorder = RecordingClickHouse(servers.server)
    try:
        [ws] = await load_workspaces(servers.deps.pg, [servers.ds.ws.workspace_id])
        outcome = await refresh_workspace(servers.deps.pg, recorder, ws, RollupSettings())
    finally:
        recorder.close()
    assert outcome is not None and outcome["rows"] > 0
    assert await _compare(servers.current, recorder.answers) == []


async def test_the_rollup_tables_hold_the_same_on_a_current_clickhouse(servers: Servers):
    ws = {"ws": servers.ds.ws.workspace_id}
    answers = []
    for sql in (
        "SELECT hour, is_bot, countMerge(events), uniqCombinedMerge(12)(visitors)"
        " FROM clicks_hourly_workspace WHERE workspace_id = %(ws)s GROUP BY hour, is_bot"
        " ORDER BY hour, is_bot",
        "SELECT link_id, hour, is_bot, countMerge(events), uniqCombinedMerge(12)(visitors)"
        " FROM clicks_hourly_link WHERE workspace_id = %(ws)s GROUP BY link_id, hour, is_bot"
        " ORDER BY link_id, hour, is_bot",
        "SELECT link_id, hour, is_bot, sum(events) FROM leads_hourly WHERE workspace_id = %(ws)s"
        " GROUP BY link_id, hour, is_bot ORDER BY link_id, hour, is_bot",
        "SELECT link_id, hour, is_bot, currency, sum(events), sum(amount) FROM sales_hourly"
        " WHERE workspace_id = %(ws)s GROUP BY link_id, hour, is_bot, currency"
        " ORDER BY link_id, hour, is_bot, currency",
    ):
        answers.append((sql, ws, await servers.server.fetch(sql, ws)))
    assert all(rows for _, _, rows in answers)
    assert await _compare(servers.current, answers) == []
