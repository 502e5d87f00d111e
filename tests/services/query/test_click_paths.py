"""Click paths of a busy link: a deterministic sample of its visitors, said in meta, and ties in
the top paths broken by the path itself."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from services.live.tables import CLICK_COLUMNS
from services.query import drilldowns, sequences
from services.query.executor import Executor
from services.query.params import QueryContext
from services.query.sequences import SequenceQuery
from services.timerange import Window

START = datetime(2026, 5, 4, tzinfo=UTC)
END = START + timedelta(days=1)
VISITORS = 60
SAMPLE = 25


def _context(workspace_id: int) -> QueryContext:
    window = Window(START, END, START - timedelta(days=1), ZoneInfo("UTC"), "day")
    return QueryContext(workspace_id, window, None, (), False, "USD", {}, 1000, ())


async def _busy_link(ch, tenant) -> tuple[int, list[int]]:
    """A workspace whose first link was clicked by VISITORS visitors, each then clicking one of
    the other two links (every visitor also clicks again the next day, outside the window)."""
    t = await tenant(links_count=3)
    a, b, c = t.link_ids
    rows = []
    for i in range(VISITORS):
        visitor = f"visitor-{i:03d}"
        at = START + timedelta(minutes=10 * i)
        for n, (link, when) in enumerate(
            ((a, at), ((b, c)[i % 2], at + timedelta(minutes=2)), (a, at + timedelta(days=1)))
        ):
            values = {name: "" for name in CLICK_COLUMNS}
            values.update(
                event_id=10**9 * t.workspace_id + 10 * i + n,
                workspace_id=t.workspace_id,
                link_id=link,
                timestamp=when,
                visitor_id=visitor,
                rule_id=0,
                condition_id=0,
                is_bot=0,
            )
            rows.append(tuple(values[name] for name in CLICK_COLUMNS))
    await ch.insert("clicks", CLICK_COLUMNS, rows)
    return t.workspace_id, t.link_ids


async def _smallest_hashes(ch, workspace_id: int, count: int) -> list[str]:
    hashed = await ch.fetch(
        "SELECT visitor_id, cityHash64(visitor_id) FROM clicks WHERE workspace_id = %(w)s"
        " GROUP BY visitor_id",
        {"w": workspace_id},
    )
    return [v for v, _ in sorted(hashed, key=lambda r: (r[1], r[0]))[:count]]


async def test_the_sample_is_the_visitors_with_the_smallest_hashes(system, ch, tenant):
    workspace_id, (a, _b, _c) = await _busy_link(ch, tenant)
    query = SequenceQuery(workspace_id, START, END, through=a, max_visitors=SAMPLE)
    first = await sequences.run_sequences(ch, query)
    assert first.total_visitors == VISITORS
    assert [v for v, _t, _l in first.visitors] == sorted(
        await _smallest_hashes(ch, workspace_id, SAMPLE)
    )
    for _ in range(3):
        assert await sequences.run_sequences(ch, query) == first
    everyone = await sequences.run_sequences(ch, SequenceQuery(workspace_id, START, END, a))
    assert len(everyone.visitors) == everyone.total_visitors == VISITORS


async def test_a_sampled_answer_says_so_and_is_the_same_every_time(system, ch, pg, tenant):
    workspace_id, (a, b, c) = await _busy_link(ch, tenant)
    ctx = _context(workspace_id)
    answer = await drilldowns.click_paths(Executor(ch), pg, ctx, a, None, max_visitors=SAMPLE)
    sample = answer.meta.sample
    assert (sample.unit, sample.sampled, sample.total) == ("visitors", SAMPLE, VISITORS)
    assert abs(sample.fraction - SAMPLE / VISITORS) < 1e-6
    assert any(f"{SAMPLE:,} of the {VISITORS:,} visitors" in n for n in answer.meta.notices)
    chosen = await _smallest_hashes(ch, workspace_id, SAMPLE)
    want = Counter((a, (b, c)[int(v.rsplit("-", 1)[1]) % 2]) for v in chosen)
    assert {tuple(p.link_ids): p.count for p in answer.paths} == dict(want)
    for _ in range(3):
        again = await drilldowns.click_paths(Executor(ch), pg, ctx, a, None, max_visitors=SAMPLE)
        assert again == answer
    whole = await drilldowns.click_paths(Executor(ch), pg, ctx, a, None)
    assert not whole.meta.HasField("sample") and not whole.meta.notices
    assert sum(p.count for p in whole.paths) == VISITORS


def test_ties_are_broken_by_the_path_whatever_the_order_rows_came_in():
    paths = [(3, 1), (1, 2), (2, 5, 1), (1, 3), (9, 1)]
    counts = {(3, 1): 4, (1, 2): 4, (2, 5, 1): 7, (1, 3): 4, (9, 1): 1}
    forwards = Counter({p: counts[p] for p in paths})
    backwards = Counter({p: counts[p] for p in reversed(paths)})
    want = [((2, 5, 1), 7), ((1, 2), 4), ((1, 3), 4)]
    assert drilldowns._top_paths(forwards, 3) == drilldowns._top_paths(backwards, 3) == want
