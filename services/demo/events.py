"""The demo's clicks, leads and sales, generated block by block from one seeded RNG."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from random import Random
from zoneinfo import ZoneInfo

from services.demo import audience
from services.demo.audience import Client, Place
from services.demo.catalog import LEAD_EVENTS, PRICES, SALE_EVENTS
from services.demo.profiles import LinkProfile
from services.demo.rhythm import Slot, plan
from services.demo.rules import first_match
from services.demo.weighted import Weighted
from services.ids import EventIds
from services.live.tables import CLICK_COLUMNS

# Event ids come from their own 5-bit node so they never collide with ids minted by live nodes
# that use the others.
DEMO_NODE_ID = 31
BLOCK_ROWS = 100_000
BOT_SHARE = 0.02
LEAD_RATE = 0.03
SALE_RATE = 0.25
REPEAT_SHARE = 0.3
# Returning visitors are drawn from this many most recent new ones.
RECENT_VISITORS = 20_000
BOT_VISITORS = 24
LEAD_DELAY_MEAN = 25 * 60
SALE_DELAY_MEAN = 30 * 3600
HANDHELD = ("mobile", "tablet")

LEAD_COLUMNS = (
    "event_id", "workspace_id", "link_id", "click_id", "timestamp", "customer_id", "event_name",
    "country", "region", "city", "continent", "device", "browser", "os", "referrer", "trigger",
    "visitor_id", "is_bot",
)  # fmt: skip
SALE_COLUMNS = (
    "event_id", "workspace_id", "link_id", "click_id", "timestamp", "customer_id", "event_name",
    "amount", "currency", "invoice_id", "country", "region", "city", "continent", "device",
    "browser", "os", "referrer", "trigger", "visitor_id", "is_bot",
)  # fmt: skip

Row = tuple[object, ...]
Match = tuple[int, int, str] | None
Visitor = tuple[str, Place, Client]


@dataclass(frozen=True)
class Block:
    """Rows for one insert into `table` (timestamps as UTC epoch seconds)."""

    table: str
    columns: tuple[str, ...]
    rows: list[Row]


@dataclass
class Counts:
    """Events generated so far."""

    clicks: int = 0
    leads: int = 0
    sales: int = 0


class DemoEvents:
    """Events of one workspace over [start, end) epoch seconds, deterministic for a seed."""

    def __init__(
        self,
        workspace_id: int,
        links: Sequence[LinkProfile],
        *,
        start: int,
        end: int,
        tz: ZoneInfo,
        clicks: int,
        seed: int,
        block_rows: int = BLOCK_ROWS,
        ids: EventIds | None = None,
    ) -> None:
        if not links:
            raise ValueError("the demo needs at least one link")
        self.workspace_id = workspace_id
        self.links = list(links)
        self.start, self.end = start, end
        self.block_rows = block_rows
        self.ids = ids or EventIds(DEMO_NODE_ID)
        self.rng = Random(seed)
        self.counts = Counts()
        self.slots: list[Slot] = plan(start, end, tz, clicks, self.rng, self._surge)
        self._state = _State(self.rng)

    def _surge(self, day: float) -> float:
        base = sum(link.popularity for link in self.links)
        return sum(link.weight(day) for link in self.links) / base

    def blocks(self) -> Iterator[Block]:
        """Insert blocks: clicks whenever block_rows are ready, conversions once they fill."""
        clicks: list[Row] = []
        leads: list[Row] = []
        sales: list[Row] = []
        for slot in self.slots:
            remaining = slot.clicks
            if not remaining:
                continue
            pool = Weighted((i, link.weight(slot.day)) for i, link in enumerate(self.links))
            while remaining:
                # Never more than block_rows clicks in memory, however full one slot is.
                n = min(remaining, self.block_rows - len(clicks))
                self._generate(slot, pool, n, clicks, leads, sales)
                remaining -= n
                if len(clicks) >= self.block_rows:
                    yield self._take("clicks", CLICK_COLUMNS, clicks)
                if len(leads) >= self.block_rows:
                    yield self._take("leads", LEAD_COLUMNS, leads)
                if len(sales) >= self.block_rows:
                    yield self._take("sales", SALE_COLUMNS, sales)
        for table, columns, rows in (
            ("clicks", CLICK_COLUMNS, clicks),
            ("leads", LEAD_COLUMNS, leads),
            ("sales", SALE_COLUMNS, sales),
        ):
            if rows:
                yield self._take(table, columns, rows)

    def _take(self, table: str, columns: tuple[str, ...], rows: list[Row]) -> Block:
        block = Block(table, columns, rows[:])
        rows.clear()
        setattr(self.counts, table, getattr(self.counts, table) + len(block.rows))
        return block

    def _generate(
        self,
        slot: Slot,
        pool: Weighted[int],
        count: int,
        clicks: list[Row],
        leads: list[Row],
        sales: list[Row],
    ) -> None:
        """Append `count` clicks in slot (links drawn from pool) and the conversions they make."""
        # The hot loop: everything it touches is bound to a local first.
        rng = self.rng
        rand, bits, expo = rng.random, rng.getrandbits, rng.expovariate
        next_id = self.ids.next
        ws, end = self.workspace_id, self.end
        links = self.links
        cum, total, last = pool.cum, pool.total, len(links) - 1
        places, bot_places = audience.PLACES.pick, audience.BOT_PLACES.pick
        mobile, desktop, bots = (
            audience.MOBILE_CLIENTS.pick,
            audience.DESKTOP_CLIENTS.pick,
            audience.BOT_CLIENTS.pick,
        )
        state = self._state
        recent, bot_visitors, rule_cache = state.recent, state.bot_visitors, state.rule_cache
        lead_rate = [LEAD_RATE / (1 - BOT_SHARE) * link.conversion for link in links]
        lead_events, sale_events = state.lead_events.pick, state.sale_events.pick
        prices = state.prices
        direct = audience.DIRECT
        lo, span = slot.start, slot.end - slot.start

        for _ in range(count):
            ts = lo + int(rand() * span)
            li = bisect_right(cum, rand() * total)
            if li > last:
                li = last
            link = links[li]
            if rand() < BOT_SHARE:
                client, place = bots(rand()), bot_places(rand())
                visitor_id = bot_visitors[int(rand() * BOT_VISITORS)]
                referrer, referrer_url, trigger = direct, "", "link"
            else:
                qr = rand() < link.qr_share
                known: Visitor | None = None
                if recent and rand() < REPEAT_SHARE:
                    known = recent[int(rand() * len(recent))]
                    if qr and known[2].device not in HANDHELD:
                        known = None
                if known is None:
                    place = places(rand())
                    handheld = qr or rand() < place.mobile_share
                    client = mobile(rand()) if handheld else desktop(rand())
                    visitor_id = f"{bits(128):032x}"
                    if len(recent) < RECENT_VISITORS:
                        recent.append((visitor_id, place, client))
                    else:
                        recent[state.next_slot] = (visitor_id, place, client)
                        state.next_slot = (state.next_slot + 1) % RECENT_VISITORS
                else:
                    visitor_id, place, client = known
                if qr:
                    referrer, referrer_url, trigger = direct, "", "qr"
                else:
                    source = link.referrers.pick(rand())
                    referrer, trigger = source.host, "link"
                    urls = source.urls
                    referrer_url = urls[0] if len(urls) == 1 else urls[int(rand() * len(urls))]

            rule_id, condition_id, destination = 0, 0, link.destination_url
            if link.rules:
                key = (li, place.country, place.continent, client.device, client.os,
                       client.browser, referrer, trigger)  # fmt: skip
                if key in rule_cache:
                    matched = rule_cache[key]
                else:
                    matched = rule_cache[key] = first_match(link.rules, {
                        "country": place.country, "continent": place.continent,
                        "device": client.device, "os": client.os, "browser": client.browser,
                        "referrer": referrer, "trigger": trigger,
                    })  # fmt: skip
                if matched is not None:
                    rule_id, condition_id, destination = matched

            click_id = next_id()
            clicks.append((
                click_id, ws, link.link_id, ts, place.country, place.region, place.city,
                place.continent, client.device, client.browser, client.os, referrer, referrer_url,
                trigger, visitor_id, rule_id, condition_id, destination, int(client.is_bot),
            ))  # fmt: skip

            if client.is_bot or rand() >= lead_rate[li]:
                continue
            lead_ts = ts + 30 + int(expo(1 / LEAD_DELAY_MEAN))
            if lead_ts >= end:
                lead_ts = ts + int(rand() * (end - ts))
            customer_id = "cus_" + visitor_id[:16]
            dims = (place.country, place.region, place.city, place.continent, client.device,
                    client.browser, client.os, referrer, trigger, visitor_id, 0)  # fmt: skip
            leads.append(
                (next_id(), ws, link.link_id, click_id, lead_ts, customer_id, lead_events(rand()))
                + dims
            )
            if rand() >= SALE_RATE:
                continue
            sale_ts = lead_ts + 300 + int(expo(1 / SALE_DELAY_MEAN))
            if sale_ts >= end:
                sale_ts = lead_ts + int(rand() * (end - lead_ts))
            currency = place.currency if place.currency in prices else "USD"
            amount = prices[currency].pick(rand()) * (2 if rand() < 0.08 else 1)
            sales.append((
                next_id(), ws, link.link_id, click_id, sale_ts, customer_id, sale_events(rand()),
                amount, currency, f"inv_{bits(48):012x}",
            ) + dims)  # fmt: skip


class _State:
    """What persists across slots: recent visitors, bot visitors, rule matches, price pools."""

    def __init__(self, rng: Random) -> None:
        self.recent: list[Visitor] = []
        self.next_slot = 0
        self.bot_visitors = [f"{rng.getrandbits(128):032x}" for _ in range(BOT_VISITORS)]
        self.rule_cache: dict[tuple[object, ...], Match] = {}
        self.lead_events = Weighted(LEAD_EVENTS)
        self.sale_events = Weighted(SALE_EVENTS)
        self.prices = {code: Weighted(pairs) for code, pairs in PRICES.items()}
