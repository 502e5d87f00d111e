"""The raw click-event export route `POST /v1/analytics`: events, envelope and OpenAPI schema."""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import dataset as d
from tests.e2e.dataset import WINDOW, Dataset

PATH = "/v1/analytics"
SEED = Path(__file__).resolve().parents[3] / "shared" / "seeds" / "004_7c725ca813cd82b7.txt"
EVENT_FIELDS = {
    "id": int,
    "workspace_id": int,
    "organization_id": int,
    "url_id": int,
    "domain": str,
    "url_slug": str,
    "device_type": str,
    "platform": str,
    "browser": str,
    "country": str,
    "referrer": str,
    "created_at": str,
    "is_bot": bool,
}
ENVELOPE = {"success", "status_code", "message", "data"}

# The seed's schemas, for when the seed file is not next to the checkout.
EMBEDDED_SCHEMAS: dict[str, Any] = {
    "AnalyticsResponse": {
        "type": "object",
        "properties": {
            "success": {"type": "boolean"},
            "status_code": {"type": "integer"},
            "message": {"type": "string"},
            "data": {"type": "array", "items": {"$ref": "#/components/schemas/AnalyticsEvent"}},
        },
        "required": ["success", "status_code", "data"],
    },
    "ErrorResponse": {
        "type": "object",
        "properties": {
            "success": {"type": "boolean"},
            "status_code": {"type": "integer"},
            "message": {"type": "string"},
            "data": {"nullable": True},
        },
        "required": ["success", "status_code", "message"],
    },
    "AnalyticsEvent": {
        "type": "object",
        "properties": {
            name: {"type": "integer" if kind is int else "string"}
            for name, kind in EVENT_FIELDS.items()
            if kind is not bool
        },
        "required": ["id", "workspace_id", "organization_id", "url_id", "domain", "created_at"],
    },
}


def seed_schemas() -> dict[str, Any]:
    """components.schemas of the seed's OpenAPI document (the embedded copy without the seed)."""
    if not SEED.exists():
        return EMBEDDED_SCHEMAS
    yaml = pytest.importorskip("yaml")
    text = SEED.read_text()
    found = re.search(r"````yaml[^\n]*\n(.*?)````", text, re.S)
    assert found, "the seed's OpenAPI block"
    document = yaml.safe_load(found.group(1))
    return document["components"]["schemas"]


def validate(instance: Any, schema_name: str) -> None:
    """Validate against a schema of the seed: with jsonschema when installed, else by hand."""
    schemas = seed_schemas()
    try:
        import jsonschema
    except ImportError:
        jsonschema = None
    if jsonschema is not None:
        root = {"$ref": f"#/components/schemas/{schema_name}", "components": {"schemas": schemas}}
        jsonschema.Draft202012Validator(root).validate(instance)
    for name in schemas[schema_name].get("required", []):
        assert name in instance, (name, instance)
    if schema_name == "AnalyticsResponse":
        for item in instance["data"]:
            for name in schemas["AnalyticsEvent"]["required"]:
                assert name in item, (name, item)


@pytest.fixture(scope="module")
async def ds(system, pg, ch) -> Dataset:
    """One workspace with the dataset, shared by this module's tests (they only read)."""
    return await d.build(pg, ch)


async def post(http, body: dict[str, Any], headers: dict[str, str], status: int = 200) -> Any:
    r = await http.post(PATH, json=body, headers=headers)
    assert r.status_code == status, r.text
    return r.json()


def expected(
    ds: Dataset, first: str, last: str, url_id: int | None = None, bots: bool = False
) -> list[d.Event]:
    """The clicks (bots only with include_bots, as on every route) of the inclusive local dates,
    oldest first."""
    start, end = d.local_range(date.fromisoformat(first), date.fromisoformat(last), ds.tz)
    links = None if url_id is None else [url_id]
    found = d.select(ds.clicks, start, end, bots=bots, link_ids=links)
    return sorted(found, key=lambda c: (c["timestamp"], c["event_id"]))


def as_item(ds: Dataset, c: d.Event) -> dict[str, Any]:
    link = next(lk for lk in ds.links if lk["id"] == c["link_id"])
    return {
        "id": c["event_id"],
        "workspace_id": ds.ws.workspace_id,
        "organization_id": ds.ws.organization_id,
        "url_id": c["link_id"],
        "domain": link["domain"],
        "url_slug": link["slug"],
        "device_type": c["device"],
        "platform": c["os"],
        "browser": c["browser"],
        "country": c["country"],
        "referrer": c["referrer"],
        "created_at": c["timestamp"].astimezone(ds.tz).isoformat(),
        "is_bot": bool(c["is_bot"]),
    }


async def all_pages(http, ds: Dataset, body: dict[str, Any]) -> list[dict[str, Any]]:
    """Every page's items, following next_cursor; each page is checked against the schema."""
    items: list[dict[str, Any]] = []
    cursor = ""
    for _ in range(500):
        page = await post(http, {**body, **({"cursor": cursor} if cursor else {})}, ds.headers)
        validate(page, "AnalyticsResponse")
        assert set(page) == ENVELOPE | {"next_cursor"}, page.keys()
        assert page["success"] is True and page["status_code"] == 200
        assert len(page["data"]) <= body.get("limit", 1000)
        items.extend(page["data"])
        cursor = page.get("next_cursor") or ""
        if not cursor:
            return items
        assert len(page["data"]) == body.get("limit", 1000)
    raise AssertionError("pagination never ended")


async def test_envelope_fields_and_types(http, ds):
    body = await post(http, dict(WINDOW), ds.headers)
    validate(body, "AnalyticsResponse")
    assert set(body) == ENVELOPE | {"next_cursor"}  # null on the last page
    assert body["success"] is True and body["status_code"] == 200
    assert isinstance(body["message"], str)
    assert body["data"], "the window has clicks"
    for item in body["data"]:
        assert set(item) == set(EVENT_FIELDS), item
        for name, kind in EVENT_FIELDS.items():
            assert type(item[name]) is kind, (name, item[name])
        parsed = datetime.fromisoformat(item["created_at"])
        assert parsed.utcoffset() is not None


@pytest.mark.parametrize(
    ("first", "last"),
    [
        (WINDOW["start"], WINDOW["end"]),
        ("2026-03-29", "2026-03-29"),  # a 23-hour local day
        ("2026-03-23", "2026-03-24"),  # the edge clicks at local midnight
        ("2026-04-02", "2026-04-03"),
    ],
)
async def test_inclusive_local_dates(http, ds, first, last):
    body = await post(http, {"start": first, "end": last}, ds.headers)
    want = [as_item(ds, c) for c in expected(ds, first, last)]
    assert want
    assert body["data"] == want
    assert body["next_cursor"] is None


@pytest.mark.parametrize("bots", [False, True])
@pytest.mark.parametrize("limit", [1, 25, 1000])
async def test_pagination_covers_every_click_once(http, ds, limit, bots):
    body = {**WINDOW, **({"limit": limit} if limit != 1000 else {})}
    if bots:
        body["include_bots"] = True
    items = await all_pages(http, ds, body)
    want = [as_item(ds, c) for c in expected(ds, WINDOW["start"], WINDOW["end"], bots=bots)]
    ids = [item["id"] for item in items]
    assert len(ids) == len(set(ids))
    assert items == want
    assert any(item["is_bot"] for item in items) is bots


async def test_bots_are_left_out_unless_asked_for(http, ds):
    everything = expected(ds, WINDOW["start"], WINDOW["end"], bots=True)
    bots = {c["event_id"] for c in everything if c["is_bot"]}
    assert bots, "the window has bot clicks"
    plain = await all_pages(http, ds, dict(WINDOW))
    assert not bots & {item["id"] for item in plain}
    assert not any(item["is_bot"] for item in plain)
    asked = await all_pages(http, ds, {**WINDOW, "include_bots": True})
    assert {item["id"] for item in asked if item["is_bot"]} == bots
    assert len(asked) == len(plain) + len(bots)
    off = await all_pages(http, ds, {**WINDOW, "include_bots": False})
    assert off == plain


async def test_url_and_workspace_filters(http, ds):
    link = ds.link("autumn")
    body = {**WINDOW, "url_id": link["id"], "workspace_id": ds.ws.workspace_id, "limit": 10}
    items = await all_pages(http, ds, body)
    want = [as_item(ds, c) for c in expected(ds, WINDOW["start"], WINDOW["end"], link["id"])]
    assert want and items == want
    assert {item["url_slug"] for item in items} == {link["slug"]}


async def test_errors_use_the_status_code_envelope(http, ds, pg):
    def check(body: dict[str, Any], status: int) -> None:
        validate(body, "ErrorResponse")
        assert body["success"] is False and body["status_code"] == status
        assert isinstance(body["message"], str) and body["message"]
        assert body.get("data") is None
        assert "error" not in body

    for bad in (
        {"end": "2026-03-31"},  # start missing
        {"start": "2026-03-01"},  # end missing
        {"start": "2026-03-31", "end": "2026-03-01"},
        {"start": "31.03.2026", "end": "2026-03-31"},
        {**WINDOW, "limit": 0},
        {**WINDOW, "cursor": "not-a-cursor"},
    ):
        check(await post(http, bad, ds.headers, status=400), 400)
    check(await post(http, dict(WINDOW), {}, status=401), 401)
    check(await post(http, dict(WINDOW), {"Authorization": "Bearer lp_nope"}, status=401), 401)
    writer = await d.make_workspace(pg, scopes=("events:write",))
    check(await post(http, dict(WINDOW), writer.headers, status=403), 403)
    other = await d.make_workspace(pg)
    foreign = {**WINDOW, "url_id": other.link_ids[0]}
    check(await post(http, foreign, ds.headers, status=404), 404)
    check(await post(http, {**WINDOW, "workspace_id": other.workspace_id}, ds.headers, 404), 404)


async def test_another_workspace_sees_none_of_these_clicks(http, ds, pg):
    other = await d.make_workspace(pg, timezone="America/New_York")
    body = await post(http, dict(WINDOW), other.headers)
    assert body["data"] == [] and not body.get("next_cursor")
