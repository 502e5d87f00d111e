"""The query API (`POST /api/analytics/query`, gRPC QueryService.Query) answers what a plain
Python reading of the request gives over the dataset's events: every dimension, every filter
op, and/or/not nesting, zero-filled weeks, compare, sorted pages, and its refusals."""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import grpc
import pytest
from google.protobuf import json_format

from services import protos
from tests.e2e import dataset as d
from tests.e2e.dataset import WINDOW, Dataset
from tests.e2e.test_export import download, wait_job

QUERY = "/api/analytics/query"
ALL_METRICS = (
    "clicks", "visitors", "leads", "sales", "revenue", "clickToLead", "leadToSale", "clickToSale",
)  # fmt: skip
CLICK_METRICS = ("clicks", "visitors")
KINDS = {
    "clicks": ("clicks",),
    "visitors": ("clicks",),
    "leads": ("leads",),
    "sales": ("sales",),
    "revenue": ("sales",),
    "clickToLead": ("clicks", "leads"),
    "leadToSale": ("leads", "sales"),
    "clickToSale": ("clicks", "sales"),
}
COLUMNS = ("country", "region", "city", "continent", "device", "browser", "os", "referrer",
           "trigger")  # fmt: skip
Key = tuple[Any, ...]


class Model:
    """The independent reading of a query over the dataset's plain lists."""

    def __init__(self, ds: Dataset, rates: dict[str, tuple[int, float]]) -> None:
        self.ds = ds
        self.rates = rates
        self.links = {lk["id"]: lk for lk in ds.links}
        self.names = {
            "campaign": {v: k for k, v in ds.campaigns.items()},
            "folder": {v: k for k, v in ds.folders.items()},
            "tag": {v: k for k, v in ds.tags.items()},
            "rule": {r["id"]: r["name"] for r in ds.rules},
        }

    # What an event carries for each dimension (ids of link groups; tags: several).
    def values(self, e: dict[str, Any], dim: str) -> list[Any]:
        link = self.links[e["link_id"]]
        if dim in COLUMNS:
            return [e[dim] or None]
        if dim == "link":
            return [e["link_id"]]
        if dim in ("campaign", "folder"):
            return [link[f"{dim}_id"]]
        if dim == "tag":
            return list(link["tag_ids"]) or [None]
        assert dim == "rule"
        return [e.get("rule_id") or None]

    def label(self, dim: str, value: int) -> str:
        """The name the API gives an id."""
        if dim == "link":
            return f"{self.links[value]['domain']}/{self.links[value]['slug']}"
        return self.names[dim][value]

    def texts(self, e: dict[str, Any], dim: str) -> list[str]:
        """What contains / starts_with read: the column, a slug, or the groups' names."""
        if dim in COLUMNS:
            return [e[dim]]
        if dim == "link":
            return [self.links[e["link_id"]]["slug"]]
        return [self.names[dim][v] for v in self.values(e, dim) if v is not None]

    def holds(self, e: dict[str, Any], node: dict[str, Any]) -> bool:
        if "and" in node:
            return all(self.holds(e, n) for n in node["and"])
        if "or" in node:
            return any(self.holds(e, n) for n in node["or"])
        if "not" in node:
            return not self.holds(e, node["not"])
        dim, op, values = node["dimension"], node["op"], node["values"]
        if op in ("is", "is_not"):
            if dim in COLUMNS:
                found = e[dim] in values
            else:
                found = any(str(v) in values for v in self.values(e, dim) if v is not None)
            return found if op == "is" else not found
        texts = self.texts(e, dim)
        if op == "contains":
            return any(v in t for t in texts for v in values)
        return any(t.startswith(v) for t in texts for v in values)

    def window(self, body: dict[str, Any]) -> tuple[datetime, datetime, datetime, ZoneInfo]:
        tz = ZoneInfo(body.get("timezone") or self.ds.ws.timezone)
        first, last = date.fromisoformat(body["start"]), date.fromisoformat(body["end"])
        start, end = d.local_range(first, last, tz)
        previous, _ = d.local_range(first - (last - first + timedelta(days=1)), first, tz)
        return start, end, previous, tz

    def groups(
        self, body: dict[str, Any], start: datetime, end: datetime, tz: ZoneInfo
    ) -> dict[Key, dict[str, list[dict[str, Any]]]]:
        dims = body.get("dimensions", [])
        kinds = {k for m in body["metrics"] for k in KINDS[m]}
        found: dict[Key, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
        for kind in ("clicks", "leads", "sales"):
            if kind not in kinds:
                continue
            for e in d.select(
                self.ds.events(kind), start, end, bots=body.get("includeBots", False)
            ):
                if "filters" in body and not self.holds(e, body["filters"]):
                    continue
                keys: list[Key] = [()]
                for dim in dims:
                    if dim.startswith("time:"):
                        bucket = d.bucket_start(e["timestamp"], dim.split(":")[1], tz)
                        options: list[Any] = [bucket.isoformat()]
                    else:
                        options = self.values(e, dim)
                    keys = [k + (v,) for k in keys for v in options]
                for key in keys:
                    found[key][kind].append(e)
        return found

    def metrics(self, metrics: list[str], events: dict[str, list[Any]], currency: str) -> dict:
        clicks, leads, sales = (events.get(k, []) for k in ("clicks", "leads", "sales"))
        values = {
            "clicks": len(clicks),
            "visitors": d.visitors(clicks),
            "leads": len(leads),
            "sales": len(sales),
            "revenue": d.revenue(sales, currency, self.rates),
            "clickToLead": d.ratio(len(leads), len(clicks)),
            "leadToSale": d.ratio(len(sales), len(leads)),
            "clickToSale": d.ratio(len(sales), len(clicks)),
        }
        return {m: values[m] for m in metrics}

    def answer(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        """Every row of the answer, in no particular order."""
        dims = body.get("dimensions", [])
        names = ["time" if x.startswith("time:") else x for x in dims]
        start, end, previous_start, tz = self.window(body)
        currency = body.get("currency", self.ds.ws.currency)
        current = self.groups(body, start, end, tz)
        at = names.index("time") if "time" in names else -1
        if at >= 0:
            granularity = dims[at].split(":")[1]
            labels = d.bucket_labels(start, end, granularity, tz)
            previous_labels = d.bucket_labels(previous_start, start, granularity, tz)
            rest = {k[:at] + k[at + 1 :] for k in current} if len(dims) > 1 else {()}
            keys = [r[:at] + (label,) + r[at:] for r in rest for label in labels]
        else:
            keys = list(current) if dims or current else [()]
        before = self.groups(body, previous_start, start, tz) if "compare" in body else {}
        rows = []
        for key in keys:
            row = dict(zip(names, key, strict=True))
            row.update(self.metrics(body["metrics"], current.get(key, {}), currency))
            if "compare" in body:
                old: Key | None = key
                if at >= 0:
                    i = labels.index(key[at])
                    old = (
                        key[:at] + (previous_labels[i],) + key[at + 1 :]
                        if i < len(previous_labels)
                        else None
                    )
                row["previous"] = self.metrics(
                    body["metrics"], before.get(old, {}) if old is not None else {}, currency
                )
            rows.append(row)
        return rows


def same_rows(got: list[dict[str, Any]], want: list[dict[str, Any]], dims: list[str]) -> None:
    """Equal rows, matched by their dimension values (order not compared)."""
    names = ["time" if x.startswith("time:") else x for x in dims]

    def key(r: dict[str, Any]) -> str:
        return repr(tuple(r[n] for n in names))

    by_key = {key(r): r for r in got}
    assert len(by_key) == len(got), "two rows with the same dimension values"
    assert sorted(by_key) == sorted(key(r) for r in want), (len(got), len(want))
    for w in want:
        g = by_key[key(w)]
        assert set(g) == set(w), (g, w)
        same_values(g, w)


def same_values(got: dict[str, Any], want: dict[str, Any]) -> None:
    for name, value in want.items():
        if name == "previous":
            same_values(got[name], value)
        elif name == "revenue":
            assert d.close(got[name], value, d.MONEY_TOLERANCE), (name, got, want)
        elif isinstance(value, float):
            assert d.close(got[name], value, 1e-6), (name, got, want)
        else:
            assert got[name] == value, (name, got, want)


@pytest.fixture(scope="module")
def model(ds, rates) -> Model:
    return Model(ds, rates)


async def post(http, ds: Dataset, body: dict[str, Any], status: int = 200) -> Any:
    r = await http.post(QUERY, json=body, headers=ds.headers)
    assert r.status_code == status, r.text
    answer = r.json()
    assert answer["success"] is (status == 200), answer
    return answer["data"] if status == 200 else answer["error"]


async def check(http, ds: Dataset, model: Model, body: dict[str, Any]) -> dict[str, Any]:
    """The whole answer (limit 1000) equals the model's; the data returned."""
    data = await post(http, ds, {"limit": 1000, **body})
    assert data["nextCursor"] is None
    same_rows(data["rows"], model.answer(body), body.get("dimensions", []))
    return data


ISSUE_EXAMPLE = {
    "metrics": ["clicks", "visitors"],
    "dimensions": ["country", "device"],
    **WINDOW,
    "timezone": "UTC",
    "filters": {"and": [{"dimension": "country", "op": "is_not", "values": ["FR"]}]},
}


async def test_the_issue_example(http, ds, model):
    data = await post(http, ds, ISSUE_EXAMPLE)
    want = model.answer(ISSUE_EXAMPLE)
    same_rows(data["rows"], want, ISSUE_EXAMPLE["dimensions"])
    assert all(set(r) == {"country", "device", "clicks", "visitors"} for r in data["rows"])
    assert all(r["country"] != "FR" for r in data["rows"])

    # Flat rows, the first metric descending by default (ties by the dimensions), whole numbers.
    def ties(r: dict[str, Any]) -> tuple[Any, ...]:
        return tuple((r[n] is not None, r[n]) for n in ("country", "device"))  # unknown first

    ordered = sorted(sorted(want, key=ties), key=lambda r: -r["clicks"])
    assert [ties(r) for r in data["rows"]] == [ties(r) for r in ordered]
    assert all(type(r["clicks"]) is int for r in data["rows"])
    meta = data["meta"]
    assert meta["metrics"] == ["clicks", "visitors"]
    assert meta["dimensions"] == ["country", "device"]
    assert meta["orderBy"] == [{"field": "clicks", "direction": "desc"}]
    assert meta["limit"] == 100 and meta["groups"] == len(want)
    assert meta["maxGroups"] == 10000 and meta["timeoutSeconds"] > 0
    assert meta["timezone"] == "UTC" and meta["start"] == "2026-03-24T00:00:00+00:00"
    assert meta["source"] == "clickhouse"


DIMENSIONS = [
    "country", "region", "city", "continent", "device", "browser", "os", "referrer", "trigger",
    "link", "campaign", "folder", "tag", "rule", "time:hour", "time:day", "time:week",
    "time:month",
]  # fmt: skip


@pytest.mark.parametrize("dimension", DIMENSIONS)
async def test_every_dimension(http, ds, model, dimension):
    metrics = list(CLICK_METRICS) if dimension == "rule" else list(ALL_METRICS)
    await check(http, ds, model, {"metrics": metrics, "dimensions": [dimension], **WINDOW})


@pytest.mark.parametrize(
    "dimensions",
    [
        [],
        ["campaign", "folder", "tag"],
        ["tag", "country", "time:day"],
        ["link", "rule", "device"],
        ["continent", "referrer", "trigger", "os"],
    ],
)
async def test_several_dimensions(http, ds, model, dimensions):
    metrics = list(CLICK_METRICS) if "rule" in dimensions else list(ALL_METRICS)
    body = {"metrics": metrics, "dimensions": dimensions, **WINDOW, "currency": "USD"}
    data = await check(http, ds, model, body)
    labels = {}
    for row in data["rows"]:
        for name in ("link", "campaign", "folder", "tag", "rule"):
            if row.get(name) is not None:
                labels[f"{name}:{row[name]}"] = model.label(name, row[name])
    assert data["meta"]["labels"] == labels


def conditions(ds: Dataset) -> list[dict[str, Any]]:
    """A condition of every op on every kind of dimension."""
    spring, vip = ds.campaigns["Spring"], ds.tags["vip"]
    rule = ds.rules[0]["id"]
    link = ds.link("spring-b")["id"]
    return [
        {"dimension": "country", "op": "is", "values": ["DE", "US"]},
        {"dimension": "country", "op": "is_not", "values": ["DE", ""]},
        {"dimension": "city", "op": "contains", "values": ["ü", "York"]},
        {"dimension": "city", "op": "starts_with", "values": ["M", "Lon"]},
        {"dimension": "referrer", "op": "contains", "values": ["."]},
        {"dimension": "referrer", "op": "starts_with", "values": ["news"]},
        {"dimension": "continent", "op": "is", "values": ["EU"]},
        {"dimension": "device", "op": "is_not", "values": ["desktop"]},
        {"dimension": "browser", "op": "starts_with", "values": ["Fire", "Sa"]},
        {"dimension": "os", "op": "contains", "values": ["dows"]},
        {"dimension": "trigger", "op": "is", "values": ["qr"]},
        {"dimension": "region", "op": "starts_with", "values": ["DE-"]},
        {"dimension": "link", "op": "is", "values": [str(link)]},
        {"dimension": "link", "op": "is_not", "values": [str(link)]},
        {"dimension": "link", "op": "contains", "values": ["spring"]},
        {"dimension": "link", "op": "starts_with", "values": ["nope"]},
        {"dimension": "campaign", "op": "is", "values": [str(spring)]},
        {"dimension": "campaign", "op": "is_not", "values": [str(spring)]},
        {"dimension": "campaign", "op": "starts_with", "values": ["Aut"]},
        {"dimension": "folder", "op": "contains", "values": ["lo"]},
        {"dimension": "folder", "op": "is_not", "values": [str(ds.folders["Blog"])]},
        {"dimension": "tag", "op": "is", "values": [str(vip)]},
        {"dimension": "tag", "op": "is_not", "values": [str(vip)]},
        {"dimension": "tag", "op": "contains", "values": ["a"]},
        {"dimension": "rule", "op": "is", "values": [str(rule)]},
        {"dimension": "rule", "op": "is_not", "values": [str(rule)]},
        {"dimension": "rule", "op": "contains", "values": ["news", "Eng"]},
    ]


async def test_every_op_on_every_kind_of_dimension(http, ds, model):
    for condition in conditions(ds):
        clicks_only = condition["dimension"] == "rule"
        metrics = list(CLICK_METRICS) if clicks_only else list(ALL_METRICS)
        dims = ["device"] if clicks_only else ["country"]
        body = {"metrics": metrics, "dimensions": dims, **WINDOW, "filters": condition}
        data = await check(http, ds, model, body)
        assert data["rows"] or condition["values"] == ["nope"], condition


async def test_nested_and_or_not(http, ds, model):
    found = conditions(ds)
    trees = [
        {"or": [found[0], {"and": [found[6], {"not": found[7]}]}]},
        {"not": {"or": [found[14], found[23]]}},
        {"and": [{"or": [found[2], found[3], found[9]]}, {"not": {"not": found[21]}}, found[1]]},
        {"and": [found[16], found[0]]},  # a conjunction the routes' filters also express
    ]
    for tree in trees:
        body = {"metrics": list(ALL_METRICS), "dimensions": ["country", "tag"], **WINDOW}
        await check(http, ds, model, {**body, "filters": tree})


async def test_weeks_are_zero_filled(http, ds, model):
    body = {
        "metrics": ["clicks", "sales", "revenue"],
        "dimensions": ["time:week", "country"],
        "start": "2026-02-20",
        "end": "2026-04-30",
        "filters": {"dimension": "country", "op": "is", "values": ["JP", "BR"]},
    }
    data = await check(http, ds, model, body)
    weeks = sorted({r["time"] for r in data["rows"]})
    tz = ZoneInfo(ds.ws.timezone)
    assert weeks[0] == "2026-02-16T00:00:00+01:00" and len(weeks) == 11
    assert all(datetime.fromisoformat(w).astimezone(tz).weekday() == 0 for w in weeks)
    assert any(r["clicks"] == 0 for r in data["rows"])
    assert len(data["rows"]) == 11 * len({r["country"] for r in data["rows"]})
    # Default order: time ascending (ties by the other dimensions).
    assert [r["time"] for r in data["rows"]] == sorted(r["time"] for r in data["rows"])
    assert data["meta"]["granularity"] == "week"


@pytest.mark.parametrize("dimensions", [[], ["device"], ["time:day"], ["time:week", "campaign"]])
async def test_compare_previous_period(http, ds, model, dimensions):
    body = {
        "metrics": list(ALL_METRICS),
        "dimensions": dimensions,
        "start": "2026-03-29",
        "end": "2026-04-04",
        "compare": "previous_period",
    }
    data = await check(http, ds, model, body)
    assert data["meta"]["previousStart"] == "2026-03-22T00:00:00+01:00"
    assert data["meta"]["compare"] == "previous_period"
    assert any(r["previous"]["clicks"] for r in data["rows"])


async def test_pages_concatenate_to_the_sorted_answer(http, ds, model):
    body = {
        "metrics": ["clicks", "revenue"],
        "dimensions": ["country", "device"],
        **WINDOW,
        "orderBy": [{"field": "device"}, {"field": "revenue", "direction": "desc"}],
    }
    whole = await post(http, ds, {**body, "limit": 1000})
    pages: list[dict[str, Any]] = []
    cursors: list[str] = []
    while True:
        data = await post(http, ds, {**body, "limit": 4, "cursor": cursors[-1] if cursors else ""})
        assert len(data["rows"]) <= 4
        pages.extend(data["rows"])
        if not data["nextCursor"]:
            break
        cursors.append(data["nextCursor"])
    assert pages == whole["rows"]
    assert len(pages) > 8
    same_rows(pages, model.answer(body), body["dimensions"])
    keys = [(r["device"], -r["revenue"]) for r in pages]
    assert keys == sorted(keys)
    # A cursor is bound to its query (not to its page size).
    other = {**body, "metrics": ["revenue", "clicks"], "limit": 4, "cursor": cursors[0]}
    assert (await post(http, ds, other, 400))["field"] == "cursor"
    resized = await post(http, ds, {**body, "limit": 2, "cursor": cursors[0]})
    assert resized["rows"] == whole["rows"][4:6]


async def test_too_many_groups_is_a_400_naming_dimensions(http, ds):
    body = {
        "metrics": ["clicks"],
        "dimensions": ["time:hour", "city", "device"],
        "start": "2026-03-12",
        "end": "2026-04-05",
    }
    error = await post(http, ds, body, 400)
    assert error["field"] == "dimensions" and "10000" in error["message"], error


async def test_device_dimensions_need_the_plan_feature(http, pg):
    ws = await d.make_workspace(pg, plan="free", timezone="Europe/Berlin")
    for dimension in ("device", "browser", "os"):
        r = await http.post(
            QUERY, json={"metrics": ["clicks"], "dimensions": [dimension]}, headers=ws.headers
        )
        assert r.status_code == 403, r.text
        assert r.json()["error"]["code"] == "feature_not_enabled"
    body = {
        "metrics": ["clicks"],
        "dimensions": ["country"],
        "filters": {"dimension": "device", "op": "is", "values": ["mobile"]},
    }
    r = await http.post(QUERY, json=body, headers=ws.headers)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "metrics"),
        ({"metrics": ["clicks", "bounces"]}, "metrics[1]"),
        ({"metrics": ["clicks"], "dimensions": ["country", "planet"]}, "dimensions[1]"),
        ({"metrics": ["clicks"], "dimensions": ["time:year"]}, "dimensions[0]"),
        ({"metrics": ["clicks"], "dimensions": ["time:day", "time:week"]}, "dimensions[1]"),
        ({"metrics": ["clicks", "leads"], "dimensions": ["rule"]}, "dimensions[0]"),
        (
            {
                "metrics": ["clicks"],
                "filters": {
                    "and": [
                        {"dimension": "country", "op": "is", "values": ["DE"]},
                        {"dimension": "planet", "op": "is", "values": ["Mars"]},
                    ]
                },
            },
            "filters.and[1].dimension",
        ),
        (
            {
                "metrics": ["sales"],
                "filters": {"or": [{"not": {"dimension": "rule", "op": "is", "values": ["1"]}}]},
            },
            "filters.or[0].not.dimension",
        ),
        (
            {"metrics": ["clicks"], "filters": {"dimension": "tag", "op": "is", "values": ["x"]}},
            "filters.values[0]",
        ),
        ({"metrics": ["clicks"], "orderBy": [{"field": "country"}]}, "orderBy[0].field"),
        (
            {"metrics": ["clicks"], "orderBy": [{"field": "clicks", "direction": "up"}]},
            "orderBy[0].direction",
        ),
        ({"metrics": ["clicks"], "limit": 1001}, "limit"),
        ({"metrics": ["clicks"], "compare": "last_year"}, "compare"),
        ({"metrics": ["clicks"], "cursor": "bm90LWEtY3Vyc29y"}, "cursor"),
        ({"metrics": ["clicks"], "dimensions": ["time:hour"], "days": 365}, "dimensions[0]"),
        ({"metrics": ["clicks"], "colour": "red"}, "colour"),
    ],
)
async def test_bad_fields_are_400s_naming_them(http, ds, body, field):
    error = await post(http, ds, body, 400)
    assert error["field"] == field, error


async def test_grpc_answers_as_rest_does(http, ds, system):
    request = json_format.ParseDict(ISSUE_EXAMPLE, protos.analytics_query_pb2.QueryRequest())
    metadata = (("authorization", f"Bearer {ds.ws.key}"),)
    async with system.channel("query") as channel:
        stub = protos.query_pb2_grpc.QueryServiceStub(channel)
        reply = await stub.Query(request, metadata=metadata)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.Query(protos.analytics_query_pb2.QueryRequest(), metadata=metadata)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    rest = await post(http, ds, ISSUE_EXAMPLE)
    rows = [json_format.MessageToDict(r) for r in reply.rows]
    assert [{k: v for k, v in r.items()} for r in rows] == rest["rows"]
    assert reply.meta.groups == rest["meta"]["groups"]


async def test_answers_are_cached_by_body(http, ds):
    body = {"metrics": ["leads"], "dimensions": ["continent"], **WINDOW}
    first = await http.post(QUERY, json=body, headers=ds.headers)
    again = await http.post(QUERY, json=dict(reversed(list(body.items()))), headers=ds.headers)
    other = await http.post(QUERY, json={**body, "metrics": ["sales"]}, headers=ds.headers)
    assert first.status_code == again.status_code == other.status_code == 200
    assert again.headers["x-cache"] == "HIT" and again.json() == first.json()
    assert other.headers["x-cache"] == "MISS"


async def test_a_batch_item_runs_a_query(http, ds):
    bad = {**ISSUE_EXAMPLE, "dimensions": ["country", "planet"]}
    items = [
        {"id": "q", "route": QUERY, "body": ISSUE_EXAMPLE},
        {"id": "bad", "route": QUERY, "body": bad},
        {"id": "overview", "route": "/api/analytics/workspace/overview", "params": WINDOW},
    ]
    r = await http.post(
        "/api/analytics/batch", json={"queries": items, "wait": True}, headers=ds.headers
    )
    assert r.status_code == 200, r.text
    by_id = {item["id"]: item for item in r.json()["data"]["results"]}
    rest = await post(http, ds, ISSUE_EXAMPLE)
    assert by_id["q"]["ok"] is True
    assert by_id["q"]["data"]["rows"] == rest["rows"]
    assert by_id["bad"]["ok"] is False and by_id["bad"]["error"]["field"] == "dimensions[1]"
    assert by_id["overview"]["ok"] is True
    for queries, field in (
        (
            [{"route": QUERY, "body": {"metrics": ["clicks"], "colour": 1}}],
            "queries[0].body.colour",
        ),
        ([{"route": QUERY, "params": {"days": "7"}}], "queries[0].params.days"),
        ([{"route": "/api/analytics/workspace/overview", "body": {}}], "queries[0].body"),
    ):
        r = await http.post("/api/analytics/batch", json={"queries": queries}, headers=ds.headers)
        assert r.status_code == 400, r.text
        assert r.json()["error"]["field"] == field


async def test_export_dataset_query(http, ds, model):
    body = {**ISSUE_EXAMPLE, "dimensions": ["country", "time:week"], "compare": "previous_period"}
    params = {"dataset": "query", "format": "ndjson", "queryJson": json.dumps(body)}
    r = await http.get("/api/analytics/export", params=params, headers=ds.headers)
    assert r.status_code == 200, r.text
    rows = [json.loads(line) for line in r.text.splitlines()]
    want = model.answer(body)
    for row in want:
        row.update({f"previous_{m}": v for m, v in row.pop("previous").items()})
    same_rows(rows, want, body["dimensions"])
    api = await post(http, ds, {**body, "limit": 1000})
    assert [(r["country"], r["time"]) for r in rows] == [
        (r["country"], r["time"]) for r in api["rows"]
    ]
    # As a job, in CSV, a subset of the columns.
    params = {**params, "format": "csv", "columns": "time,country,clicks"}
    r = await http.post("/api/analytics/exports", params=params, headers=ds.headers)
    assert r.status_code == 202, r.text
    job = (await wait_job(http, ds, r.json()["data"]["id"]))[-1]
    text = (await download(http, job["downloadUrl"])).decode()
    lines = list(csv.DictReader(io.StringIO(text)))
    assert list(lines[0]) == ["time", "country", "clicks"]
    assert [(r["country"] or None, r["time"], int(r["clicks"])) for r in lines] == [
        (r["country"], r["time"], r["clicks"]) for r in api["rows"]
    ]
    for extra, field in (
        ({"queryJson": "{"}, "queryJson"),
        ({"queryJson": json.dumps({"metrics": ["clicks"], "dimensions": ["x"]})},
         "queryJson.dimensions[0]"),
        ({"country": "DE"}, "country"),
        ({"columns": "clicks,region"}, "columns"),
    ):  # fmt: skip
        bad = {**params, **extra}
        r = await http.get("/api/analytics/export", params=bad, headers=ds.headers)
        assert r.status_code == 400, r.text
        assert r.json()["error"]["field"] == field


async def test_openapi_describes_the_body(http):
    document = (await http.get("/openapi.json")).json()
    post_ = document["paths"][QUERY]["post"]
    schema = post_["requestBody"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/QueryRequest"}
    schemas = document["components"]["schemas"]
    assert {"metrics", "dimensions", "filters", "orderBy", "limit", "cursor", "compare"} <= set(
        schemas["QueryRequest"]["properties"]
    )
    node = schemas["FilterNode"]["properties"]
    assert node["and"]["items"] == {"$ref": "#/components/schemas/FilterNode"}
    assert {"or", "not", "dimension", "op", "values"} <= set(node)
    assert post_["x-linkpulse-cacheable"] is True
