"""The query API's filter tree: validation errors name the node's path, and the compiled SQL
keeps, on ClickHouse 18.16 (the server) and on a current ClickHouse (chdb, in-process), exactly
the rows a plain Python reading of the tree keeps."""

from __future__ import annotations

import csv
import io
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

import chdb
import pytest
from google.protobuf import json_format

from services import config, protos
from services.errors import ApiError
from services.query import filter_tree
from services.query.filter_tree import AllOf, AnyOf, Condition, Node, Not
from services.stores.clickhouse import ClickHouse, ClickHouseTarget
from services.stores.clickhouse_http import render

# (id, country, city, referrer, link_id, rule_id): values with LIKE metacharacters, quotes,
# backslashes and multi-byte letters.
ROWS = [
    (1, "DE", "München", "google.com", 11, 0),
    (2, "DE", "Mülheim", "", 12, 7),
    (3, "FR", "Paris", "news.example.com/50%_off", 11, 8),
    (4, "US", "New York", "t.co", 13, 0),
    (5, "", "", "it's\\here", 14, 7),
    (6, "GB", "London", "50%", 12, 9),
    (7, "US", "Austin", "google.co.uk", 13, 8),
    (8, "JP", "Tokyo", "_x", 14, 0),
]
COLUMNS = ("id", "country", "city", "referrer", "link_id", "rule_id")
SELECT = (
    "SELECT id FROM (SELECT t.1 AS id, t.2 AS country, t.3 AS city, t.4 AS referrer,"
    " t.5 AS link_id, t.6 AS rule_id FROM (SELECT arrayJoin(%(rows)s) AS t)) WHERE {predicate}"
    " ORDER BY id"
)
# Link-set conditions are resolved in PostgreSQL; here each path's ids are given.
VALUES = {
    "country": ["DE", "FR", "US", "", "XX"],
    "city": ["M", "Mü", "München", "Paris", "o", "ü"],
    "referrer": ["google", "50%", "%", "_", "it's", "\\", "t.co", "news"],
}
Run = Callable[[str, dict[str, Any]], Awaitable[list[int]]]


def node(data: dict[str, Any]) -> Any:
    """A FilterNode message from its JSON form."""
    return json_format.ParseDict(data, protos.analytics_query_pb2.FilterNode())


def refusal(data: dict[str, Any]) -> ApiError:
    with pytest.raises(ApiError) as caught:
        filter_tree.parse(node(data))
    return caught.value


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({}, "filters"),
        ({"and": [{"dimension": "country", "op": "is", "values": ["DE"]}], "op": "is"}, "filters"),
        ({"and": [{"dimension": "country", "op": "is", "values": ["DE"]}, {"dimension": "x"}]},
         "filters.and[1].dimension"),
        ({"or": [{"not": {"dimension": "city", "op": "like", "values": ["a"]}}]},
         "filters.or[0].not.op"),
        ({"dimension": "device", "op": "is"}, "filters.values"),
        ({"dimension": "campaign", "op": "is", "values": ["7", "spring"]}, "filters.values[1]"),
        ({"dimension": "rule", "op": "is_not", "values": ["-1"]}, "filters.values[0]"),
        ({"not": {"not": {"not": {"not": {"not": {"not": {"not": {"not": {
            "dimension": "os", "op": "is", "values": ["iOS"]}}}}}}}}},
         "filters.not.not.not.not.not.not.not.not"),
    ],
)  # fmt: skip
def test_refusals_name_the_node(data: dict[str, Any], field: str) -> None:
    assert refusal(data).field == field


def test_too_many_conditions_are_refused() -> None:
    leaf = {"dimension": "country", "op": "is", "values": ["DE"]}
    error = refusal({"or": [leaf] * (filter_tree.MAX_CONDITIONS + 1)})
    assert error.field == "filters"


def test_a_tree_reads_into_typed_nodes() -> None:
    tree = filter_tree.parse(
        node(
            {
                "and": [
                    {"dimension": "country", "op": "is_not", "values": ["FR"]},
                    {"or": [{"dimension": "link", "op": "is", "values": ["3"]}]},
                    {"not": {"dimension": "tag", "op": "contains", "values": ["vip"]}},
                ]
            }
        )
    )
    assert tree == AllOf(
        (
            Condition("country", "is_not", ("FR",), "filters.and[0]"),
            AnyOf((Condition("link", "is", ("3",), "filters.and[1].or[0]"),)),
            Not(Condition("tag", "contains", ("vip",), "filters.and[2].not")),
        )
    )
    assert [c.path for c in filter_tree.conditions(tree) if filter_tree.needs_ids(c)] == [
        "filters.and[1].or[0]",
        "filters.and[2].not",
    ]


# The independent reading: plain Python over the rows.
def holds(n: Node, row: dict[str, Any], id_sets: dict[str, frozenset[int]]) -> bool:
    if isinstance(n, AllOf):
        return all(holds(c, row, id_sets) for c in n.nodes)
    if isinstance(n, AnyOf):
        return any(holds(c, row, id_sets) for c in n.nodes)
    if isinstance(n, Not):
        return not holds(n.node, row, id_sets)
    if n.dimension in ("link", "rule"):
        inside = row[f"{n.dimension}_id"] in id_sets[n.path]
        return not inside if n.op == "is_not" else inside
    value = row[n.dimension]
    if n.op == "is":
        return value in n.values
    if n.op == "is_not":
        return value not in n.values
    if n.op == "contains":
        return any(v in value for v in n.values)
    return any(value.startswith(v) for v in n.values)


def random_tree(rng: random.Random, depth: int, path: str) -> Node:
    choice = rng.random() if depth < 3 else 1.0
    if choice < 0.2:
        return AllOf(tuple(random_tree(rng, depth + 1, f"{path}.and[{i}]") for i in range(2)))
    if choice < 0.4:
        return AnyOf(tuple(random_tree(rng, depth + 1, f"{path}.or[{i}]") for i in range(3)))
    if choice < 0.5:
        return Not(random_tree(rng, depth + 1, f"{path}.not"))
    dimension = rng.choice([*VALUES, "link", "rule"])
    op = rng.choice(filter_tree.OPS)
    if dimension in ("link", "rule"):
        return Condition(dimension, op, ("1",), path)
    values = tuple(rng.sample(VALUES[dimension], rng.randint(1, 2)))
    return Condition(dimension, op, values, path)


def id_sets_of(tree: Node, rng: random.Random) -> dict[str, frozenset[int]]:
    """A resolved id set per link / rule condition (as PostgreSQL would give)."""
    pool = {"link": [11, 12, 13, 14, 99], "rule": [7, 8, 9]}
    return {
        c.path: frozenset(rng.sample(pool[c.dimension], rng.randint(0, 2)))
        for c in filter_tree.conditions(tree)
        if filter_tree.needs_ids(c)
    }


@pytest.fixture(scope="module")
async def server() -> AsyncIterator[ClickHouse]:
    """The ClickHouse server of the tests (18.16 here), on its default database."""
    target = ClickHouseTarget.from_url(config.load().clickhouse_url)
    store = ClickHouse(replace(target, database="default"), pool_size=1)
    yield store
    store.close()


@pytest.fixture(params=["server", "chdb"])
def run(request: pytest.FixtureRequest, server: ClickHouse) -> Run:
    """Runs a statement on one engine, answering the ids kept."""

    async def on_server(sql: str, params: dict[str, Any]) -> list[int]:
        return [int(r[0]) for r in await server.fetch(sql, params)]

    async def on_chdb(sql: str, params: dict[str, Any]) -> list[int]:
        text = chdb.query(render(sql, params), "CSV").bytes().decode()
        return [int(r[0]) for r in csv.reader(io.StringIO(text))]

    return on_server if request.param == "server" else on_chdb


async def kept(run: Run, tree: Node, id_sets: dict[str, frozenset[int]]) -> list[int]:
    predicate = filter_tree.compile_tree(tree, id_sets)
    params = {"rows": ROWS, **dict(predicate.params)}
    return await run(SELECT.format(predicate=predicate.sql), params)


def expected(tree: Node, id_sets: dict[str, frozenset[int]]) -> list[int]:
    rows = [dict(zip(COLUMNS, r, strict=True)) for r in ROWS]
    return [r["id"] for r in rows if holds(tree, r, id_sets)]


@pytest.mark.parametrize("op", filter_tree.OPS)
@pytest.mark.parametrize("dimension", sorted(VALUES))
async def test_every_op_on_text_columns(run: Run, op: str, dimension: str) -> None:
    for value in VALUES[dimension]:
        tree = Condition(dimension, op, (value,), "filters")
        assert await kept(run, tree, {}) == expected(tree, {}), (dimension, op, value)


@pytest.mark.parametrize("op", filter_tree.OPS)
async def test_id_sets_and_empty_sets(run: Run, op: str) -> None:
    for ids in (frozenset(), frozenset({11}), frozenset({12, 14, 99})):
        tree = Condition("link", op, ("1",), "filters")
        assert await kept(run, tree, {"filters": ids}) == expected(tree, {"filters": ids})


async def test_random_nested_trees(run: Run) -> None:
    rng = random.Random(15)
    for _ in range(60):
        tree = random_tree(rng, 0, "filters")
        id_sets = id_sets_of(tree, rng)
        assert await kept(run, tree, id_sets) == expected(tree, id_sets), tree
