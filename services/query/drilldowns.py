"""Link drilldowns: redirect rules and conditions, traffic flow, and click paths."""

from __future__ import annotations

import asyncio
from collections import Counter

import asyncpg

from services import errors, field_rules
from services.protos import common_pb2 as c
from services.protos import query_pb2 as q
from services.query import sequences
from services.query.breakdowns import breakdown
from services.query.executor import Executor
from services.query.params import QueryContext
from services.query.predicates import DimensionFilter
from services.query.sequences import SequenceQuery

DEFAULT_SESSION_MINUTES = 30
MAX_SESSION_MINUTES = field_rules.maximum(c.AnalyticsQuery.DESCRIPTOR, "session_minutes")
MAX_PATH_LENGTH = 10


async def rules(ex: Executor, pg: asyncpg.Pool, ctx: QueryContext, link_id: int) -> object:
    """Clicks per redirect rule of the link that matched (0: no rule, the default destination)."""
    names = {
        r["id"]: r["name"]
        for r in await pg.fetch(
            "SELECT id, name FROM link_rules WHERE link_id = $1 AND workspace_id = $2",
            link_id,
            ctx.workspace_id,
        )
    }
    return await breakdown(ex, ctx, "rule", kinds=("clicks",), labels={0: "(default)", **names})


async def rule_conditions(
    ex: Executor, pg: asyncpg.Pool, ctx: QueryContext, link_id: int, rule_id: int
) -> object:
    """Clicks per condition of one rule of the link (404 for a rule of another link)."""
    rows = await pg.fetch(
        "SELECT c.id, c.field, c.operator, c.value FROM link_rules r"
        " LEFT JOIN rule_conditions c ON c.rule_id = r.id"
        " WHERE r.id = $1 AND r.link_id = $2 AND r.workspace_id = $3",
        rule_id,
        link_id,
        ctx.workspace_id,
    )
    if not rows:
        raise errors.not_found(f"rule {rule_id} of link {link_id}")
    labels: dict[object, str] = {
        r["id"]: f"{r['field']} {r['operator']} {r['value']}" for r in rows if r["id"] is not None
    }
    return await breakdown(
        ex,
        ctx,
        "condition",
        kinds=("clicks",),
        labels=labels,
        extra_filters=(DimensionFilter("rule", (rule_id,)),),
    )


async def traffic_flow(
    ex: Executor, ctx: QueryContext, link: asyncpg.Record
) -> q.TrafficFlowResponse:
    """Referrer -> link -> destination flows as Sankey nodes and weighted edges."""
    referrers, destinations_found = await asyncio.gather(
        ex.run(ctx.event_query("clicks", group_by=("referrer",), limit=ctx.limit)),
        ex.run(ctx.event_query("clicks", group_by=("destination",), limit=ctx.limit + 1)),
    )
    link_node = f"link:{link['id']}"
    nodes = {
        link_node: q.FlowNode(id=link_node, label=f"{link['domain']}/{link['slug']}", kind="link")
    }
    sources: Counter[str] = Counter()
    destinations: Counter[str] = Counter()
    for row in referrers:
        sources[row.key or "(direct)"] += row.events
    for row in destinations_found:  # a click without a recorded destination went to the link's
        destinations[row.key or link["destination_url"]] += row.events
    edges = []
    for prefix, counts, kind in (("src", sources, "source"), ("dst", destinations, "destination")):
        for value, weight in counts.most_common(ctx.limit):
            node = f"{prefix}:{value}"
            nodes[node] = q.FlowNode(id=node, label=value, kind=kind)
            pair = (node, link_node) if kind == "source" else (link_node, node)
            edges.append(q.FlowEdge(source=pair[0], target=pair[1], weight=weight))
    return q.TrafficFlowResponse(nodes=list(nodes.values()), edges=edges, meta=ctx.meta(ex.sources))


def _sessions(times: list[int], links: list[int], gap: int) -> list[list[int]]:
    sessions: list[list[int]] = []
    last = None
    for when, link in zip(times, links, strict=True):
        if last is None or when - last > gap:
            sessions.append([])
        if not sessions[-1] or sessions[-1][-1] != link:  # repeated clicks on one link count once
            sessions[-1].append(link)
        last = when
    return sessions


def _top_paths(counts: Counter[tuple[int, ...]], limit: int) -> list[tuple[tuple[int, ...], int]]:
    """The limit most frequent paths; equal counts in path order, so ties never depend on the
    order rows came in."""
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:limit]


def _sample(found: sequences.Sequences) -> c.Sample | None:
    """The sample an answer came from, when it is not every visitor through the link."""
    sampled, total = len(found.visitors), found.total_visitors
    if sampled >= total:
        return None
    fraction = round(sampled / total, 6)
    return c.Sample(unit="visitors", sampled=sampled, total=total, fraction=fraction)


async def click_paths(
    ex: Executor,
    pg: asyncpg.Pool,
    ctx: QueryContext,
    link_id: int,
    session_minutes: int | None,
    max_visitors: int = sequences.MAX_VISITORS,
) -> q.ClickPathsResponse:
    """The most frequent ordered link sequences of visitors' sessions that include the link; from
    a deterministic sample of max_visitors of its visitors when it has more (said in meta)."""
    minutes = DEFAULT_SESSION_MINUTES if session_minutes is None else session_minutes
    if not 1 <= minutes <= MAX_SESSION_MINUTES:
        raise errors.invalid_argument(
            "sessionMinutes", f"sessionMinutes must be between 1 and {MAX_SESSION_MINUTES}"
        )
    found = await sequences.run_sequences(
        ex.ch,
        SequenceQuery(
            workspace_id=ctx.workspace_id,
            start=ctx.window.start,
            end=ctx.window.end,
            through=link_id,
            max_visitors=max_visitors,
            include_bots=ctx.include_bots,
            filters=ctx.filters,
        ),
    )
    counts: Counter[tuple[int, ...]] = Counter()
    for _visitor, times, links in found.visitors:
        for session in _sessions(times, links, minutes * 60):
            if link_id in session and len(session) > 1:
                counts[tuple(session[:MAX_PATH_LENGTH])] += 1
    top = _top_paths(counts, ctx.limit)
    ids = sorted({link for path, _ in top for link in path})
    names = {
        r["id"]: f"{r['domain']}/{r['slug']}"
        for r in await pg.fetch(
            "SELECT id, domain, slug FROM links WHERE workspace_id = $1 AND id = ANY($2::bigint[])",
            ctx.workspace_id,
            ids,
        )
    }
    meta = ctx.meta(ex.sources)
    sample = _sample(found)
    if sample is not None:
        meta.sample.CopyFrom(sample)
        meta.notices.append(
            f"click paths are computed from a sample of {sample.sampled:,} of the"
            f" {sample.total:,} visitors who clicked the link ({sample.fraction:.1%}), chosen by"
            " a hash of the visitor id: the same request gives the same answer; counts are of"
            " the sample"
        )
    return q.ClickPathsResponse(
        paths=[
            q.ClickPath(link_ids=list(path), labels=[names.get(i, str(i)) for i in path], count=n)
            for path, n in top
        ],
        session_minutes=minutes,
        meta=meta,
    )
