"""The ClickHouse statements that generate the multi-tenant events, deterministically.

Every value is a hash of the click's global index (cityHash64 with a salt per column), so the
same parameters give the same rows on every build. Clicks come from `bench_tenant_chunks`
(one row per ≤65,536 clicks of a workspace, ARRAY JOINed into rows); leads are ~3.3% of the
clicks (a lead converts one click and carries its dimensions), sales a quarter of the leads, as
in the demo data. Columns are listed explicitly: columns with a DEFAULT (inserted_at, and any a
later migration adds) are left to the server.
"""

from __future__ import annotations

from services.demo.events import LEAD_COLUMNS, SALE_COLUMNS
from services.live.tables import CLICK_COLUMNS

CHUNKS_TABLE = "bench_tenant_chunks"
CHUNK_COLUMNS = ("chunk", "workspace_id", "start", "length", "first_link", "links", "visitors")

LEAD_PER_10000 = 330
SALE_ONE_IN = 4

# (country, region, city, continent); repeated entries weigh more.
GEO = (
    ("US", "California", "San Francisco", "NA"), ("US", "California", "Los Angeles", "NA"),
    ("US", "New York", "New York", "NA"), ("US", "New York", "New York", "NA"),
    ("US", "Texas", "Austin", "NA"), ("US", "Washington", "Seattle", "NA"),
    ("US", "Illinois", "Chicago", "NA"), ("CA", "Ontario", "Toronto", "NA"),
    ("GB", "England", "London", "EU"), ("GB", "England", "London", "EU"),
    ("GB", "Scotland", "Edinburgh", "EU"), ("DE", "Berlin", "Berlin", "EU"),
    ("DE", "Bavaria", "Munich", "EU"), ("FR", "Ile-de-France", "Paris", "EU"),
    ("ES", "Madrid", "Madrid", "EU"), ("NL", "North Holland", "Amsterdam", "EU"),
    ("IN", "Maharashtra", "Mumbai", "AS"), ("IN", "Karnataka", "Bengaluru", "AS"),
    ("JP", "Tokyo", "Tokyo", "AS"), ("SG", "Singapore", "Singapore", "AS"),
    ("BR", "Sao Paulo", "Sao Paulo", "SA"), ("MX", "CDMX", "Mexico City", "NA"),
    ("AU", "New South Wales", "Sydney", "OC"), ("ZA", "Gauteng", "Johannesburg", "AF"),
)  # fmt: skip
# (device, browser, os)
CLIENTS = (
    ("desktop", "Chrome", "Windows"), ("desktop", "Chrome", "Windows"),
    ("desktop", "Chrome", "Mac OS X"), ("desktop", "Safari", "Mac OS X"),
    ("desktop", "Firefox", "Windows"), ("desktop", "Edge", "Windows"),
    ("mobile", "Mobile Safari", "iOS"), ("mobile", "Mobile Safari", "iOS"),
    ("mobile", "Chrome Mobile", "Android"), ("mobile", "Chrome Mobile", "Android"),
    ("mobile", "Samsung Internet", "Android"), ("tablet", "Mobile Safari", "iOS"),
)  # fmt: skip
# (referrer host, referrer url)
REFERRERS = (
    ("", ""), ("", ""), ("", ""),
    ("google.com", "https://google.com/search"), ("google.com", "https://google.com/search"),
    ("twitter.com", "https://twitter.com/home"), ("linkedin.com", "https://linkedin.com/feed"),
    ("facebook.com", "https://facebook.com/"), ("news.ycombinator.com", "https://news.ycombinator.com/"),
    ("reddit.com", "https://reddit.com/r/all"),
)  # fmt: skip
TRIGGERS = ("link", "link", "link", "link", "qr", "api")
CURRENCIES = ("USD", "USD", "EUR", "GBP")


def _array(values: tuple[str, ...]) -> str:
    return "[" + ", ".join("'" + v.replace("'", "\\'") + "'" for v in values) + "]"


def _pick(values: tuple[str, ...], index: str) -> str:
    return f"{_array(values)}[{index} % {len(values)} + 1]"


def clicks_insert(end: int, span: int, first_chunk: int, last_chunk: int) -> str:
    """INSERT … SELECT of the clicks of chunks [first_chunk, last_chunk) (by chunk number)."""
    geo, client, ref = "cityHash64(n, 2)", "cityHash64(n, 3)", "cityHash64(n, 4)"
    values = {
        "event_id": "n + 1",
        "workspace_id": "ws",
        "link_id": "first_link + toUInt64(floor(links * pow((cityHash64(n, 1) % 1000003)"
        " / 1000003, 2)))",
        "timestamp": f"toDateTime({end} - cityHash64(n, 5) % {span})",
        "country": _pick(tuple(g[0] for g in GEO), geo),
        "region": _pick(tuple(g[1] for g in GEO), geo),
        "city": _pick(tuple(g[2] for g in GEO), geo),
        "continent": _pick(tuple(g[3] for g in GEO), geo),
        "device": _pick(tuple(c[0] for c in CLIENTS), client),
        "browser": _pick(tuple(c[1] for c in CLIENTS), client),
        "os": _pick(tuple(c[2] for c in CLIENTS), client),
        "referrer": _pick(tuple(r[0] for r in REFERRERS), ref),
        "referrer_url": _pick(tuple(r[1] for r in REFERRERS), ref),
        "trigger": _pick(TRIGGERS, "cityHash64(n, 6)"),
        "visitor_id": "lower(hex(cityHash64(ws, cityHash64(n, 7) % visitors)))",
        "rule_id": "toUInt64(0)",
        "condition_id": "toUInt64(0)",
        "destination_url": "concat('https://example.com/', toString(link_id))",
        "is_bot": "toUInt8(cityHash64(n, 8) % 50 = 0)",
    }
    select = ",\n  ".join(f"{values[c]} AS {c}" for c in CLICK_COLUMNS)
    return (
        f"INSERT INTO clicks ({', '.join(CLICK_COLUMNS)})\nSELECT\n  {select}\nFROM (\n"
        "  SELECT workspace_id AS ws, start + i AS n, first_link, links, visitors\n"
        f"  FROM {CHUNKS_TABLE} ARRAY JOIN range(length) AS i\n"
        f"  WHERE chunk >= {first_chunk} AND chunk < {last_chunk}\n)"
    )


def leads_insert(end: int) -> str:
    """INSERT … SELECT of the leads: LEAD_PER_10000 of every 10,000 clicks, up to 3 days later."""
    values = {
        "event_id": "event_id",
        "click_id": "event_id",
        "timestamp": f"toDateTime(least(toUInt32(click_ts) + cityHash64(event_id, 11) % 259200,"
        f" {end}))",
        "customer_id": "concat('cus_', visitor_id)",
        "event_name": "'Sign up'",
    }
    select = ", ".join(values.get(c, c) for c in LEAD_COLUMNS)
    carried = ", ".join(c for c in CLICK_COLUMNS if c in LEAD_COLUMNS and c != "timestamp")
    # The click's time under another name: `… AS timestamp` over a `timestamp` is cyclic.
    return (
        f"INSERT INTO leads ({', '.join(LEAD_COLUMNS)}) SELECT {select} FROM"
        f" (SELECT {carried}, timestamp AS click_ts FROM clicks"
        f" WHERE cityHash64(event_id, 10) % 10000 < {LEAD_PER_10000})"
    )


def sales_insert() -> str:
    """INSERT … SELECT of the sales: one lead in SALE_ONE_IN buys, 10.00–209.99 in a currency."""
    values = {
        "timestamp": "timestamp",
        "event_name": "'Purchase'",
        "amount": "toInt64(1000 + cityHash64(event_id, 13) % 20000)",
        "currency": _pick(CURRENCIES, "cityHash64(event_id, 14)"),
        "invoice_id": "concat('inv_', toString(event_id))",
    }
    select = ", ".join(values.get(c, c) for c in SALE_COLUMNS)
    return (
        f"INSERT INTO sales ({', '.join(SALE_COLUMNS)}) SELECT {select} FROM leads"
        f" WHERE cityHash64(event_id, 12) % {SALE_ONE_IN} = 0"
    )
