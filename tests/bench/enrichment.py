"""What enriching a click costs, in process: the user-agent, bot, country and visitor-id steps of
ingestion, the old way against the new, and whole requests on both ingestion paths, over the
ingest bench's generated clicks.

`python -m tests.bench.enrichment` prints the table (no server needed); the live section of
`make bench` includes it. The old way is the `user-agents` package (kept as a dev dependency
for this comparison only) and unkeyed SHA-256; without it the old column is empty.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from services import protos
from services.live import compiled_clicks
from services.live.clients import ClientInfo, client_info, is_bot
from services.live.enrich import accept_clicks
from services.live.geoip import country_of_ip
from services.live.visitors import VisitorIds
from tests.bench import ingest

T = TypeVar("T")
CLICKS = 20_000
DISTINCT_AGENTS = 400
BATCH = 1000
REPEAT = 5
# Distinct agents are these with a numbered suffix: every one is a cache miss.
AGENTS = (
    *ingest.AGENTS,
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.80",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/124.0.0.0 Safari/537.36",
    "curl/8.4.0",
    "python-requests/2.31.0",
)


@dataclass(frozen=True)
class Cost:
    """One step's cost in microseconds per unit, the old way and the new (nan: no such step)."""

    step: str
    unit: str
    old_us: float
    new_us: float


def _old_client_info(user_agent: str) -> ClientInfo:
    """What enrich.client_info answered with the user-agents package (the old way)."""
    from user_agents import parse

    ua = parse(user_agent)
    if ua.is_bot:
        device = "bot"
    elif ua.is_tablet:
        device = "tablet"
    elif ua.is_mobile:
        device = "mobile"
    elif ua.is_pc:
        device = "desktop"
    else:
        device = "other"
    return ClientInfo(device, ua.browser.family, ua.os.family, bool(ua.is_bot))


def _has_old() -> bool:
    try:
        import user_agents  # noqa: F401
    except ImportError:
        return False
    return True


def _per_item_us(items: Sequence[T], call: Callable[[T], object]) -> float:
    """Best of REPEAT passes of call over items, in microseconds per item."""
    best = math.inf
    for _ in range(REPEAT):
        began = time.process_time()
        for item in items:
            call(item)
        best = min(best, time.process_time() - began)
    return best / len(items) * 1e6


def _per_distinct_us(agents: Sequence[str], call: Callable[[str], object]) -> float:
    """call over agents never seen before (each pass takes fresh suffixes), per agent."""
    best = math.inf
    for run in range(REPEAT):
        fresh = [f"{a} lp/{run}.{n}" for n, a in enumerate(agents)]
        began = time.process_time()
        for agent in fresh:
            call(agent)
        best = min(best, time.process_time() - began)
    return best / len(agents) * 1e6


def _distinct_agents() -> list[str]:
    return [AGENTS[n % len(AGENTS)] for n in range(DISTINCT_AGENTS)]


def _python_path(events: list[protos.live_pb2.ClickEvent], visitors: VisitorIds) -> float:
    destinations = dict.fromkeys(range(1, ingest.LINKS + 1), "https://example.com/")
    batches = [events[at : at + BATCH] for at in range(0, len(events), BATCH)]

    def accept(batch: list[protos.live_pb2.ClickEvent]) -> object:
        return accept_clicks(
            batch,
            workspace_id=1,
            destinations=destinations,
            new_ids=itertools.count(1),
            now=datetime.now(UTC),
            visitors=visitors,
        )

    return _per_item_us(batches, accept) / BATCH


def _compiled_path(events: list[protos.live_pb2.ClickEvent], visitors: VisitorIds) -> float:
    if not compiled_clicks.enabled:
        return math.nan
    destinations = dict.fromkeys(range(1, ingest.LINKS + 1), "https://example.com/")
    requests = [
        protos.live_pb2.IngestRequest(events=events[at : at + BATCH]).SerializeToString()
        for at in range(0, len(events), BATCH)
    ]
    new_ids = list(range(1, BATCH + 1))

    def accept(data: bytes) -> object:
        found = compiled_clicks.accept_click_wire(
            data,
            workspace_id=1,
            destinations=destinations,
            new_ids=new_ids,
            now=datetime.now(UTC),
            visitors=visitors,
        )
        assert found is not None, "the compiled path left generated clicks to Python"
        return found

    return _per_item_us(requests, accept) / BATCH


def measure(clicks: int = CLICKS) -> list[Cost]:
    """Every step's cost, old and new, on `clicks` generated clicks."""
    events = ingest.clicks(clicks, range(1, ingest.LINKS + 1))
    named = []
    for event in events:
        copy = protos.live_pb2.ClickEvent()
        copy.CopyFrom(event)
        copy.country = copy.country or country_of_ip(copy.ip) or "US"
        named.append(copy)
    visitors = VisitorIds(b"the bench's visitor-id key")
    agents = _distinct_agents()
    addresses = [e.ip for e in events]
    pairs = [(e.ip, e.user_agent) for e in events]
    nan = math.nan
    old = _has_old()

    def sha256_id(pair: tuple[str, str]) -> str:
        return hashlib.sha256(f"{pair[0]}|{pair[1]}".encode()).hexdigest()[:32]

    def keyed_id(pair: tuple[str, str]) -> str:
        return visitors.of(pair[0], pair[1], 0)

    for event in events:  # the services' steady state: every agent of the traffic cached
        client_info(event.user_agent)
    without = sum(1 for e in events if not e.country)
    return [
        Cost(
            "user agent → device, browser, OS, bot (cache miss)",
            "distinct agent",
            _per_distinct_us(agents, _old_client_info) if old else nan,
            _per_distinct_us(agents, client_info.__wrapped__),
        ),
        Cost(
            "… of which the crawler patterns",
            "distinct agent",
            nan,
            _per_distinct_us(agents, is_bot),
        ),
        Cost(
            "visitor id (SHA-256 → HMAC-SHA256)",
            "click",
            _per_item_us(pairs, sha256_id),
            _per_item_us(pairs, keyed_id),
        ),
        Cost(
            "address → country (iptocc)",
            "click without a country",
            nan,
            _per_item_us(addresses, country_of_ip),
        ),
        Cost(
            "Python path (accept_clicks), every click naming its country",
            "click",
            nan,
            _python_path(named, visitors),
        ),
        Cost(
            f"Python path, {without / len(events):.0%} without a country",
            "click",
            nan,
            _python_path(events, visitors),
        ),
        Cost(
            "compiled path, every click naming its country",
            "click",
            nan,
            _compiled_path(named, visitors),
        ),
        Cost(
            f"compiled path, {without / len(events):.0%} without a country",
            "click",
            nan,
            _compiled_path(events, visitors),
        ),
    ]


def _us(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.2f}"


def markdown(costs: list[Cost]) -> str:
    """The table of docs/benchmarks.md's live section."""
    lines = [
        "## Live: enrichment cost per click",
        "In process, on the ingest bench's generated clicks (µs of the process's CPU time, best of"
        f" {REPEAT} passes). A cache miss is a user agent not seen before (the services keep"
        " the answers for the last 4,096 distinct agents); the old way is the user-agents"
        " package and unkeyed SHA-256. Both paths include every other step of ingestion"
        " (validation, rows), user agents cached as in a running service.",
        "",
        "| step | per | old µs | new µs |",
        "|---|---|--:|--:|",
    ]
    lines += [f"| {c.step} | {c.unit} | {_us(c.old_us)} | {_us(c.new_us)} |" for c in costs]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(markdown(measure()))
