"""The query API's filter tree: typed nodes read from a FilterNode message, validated (errors name
the node's path, e.g. `filters.and[1].dimension`) and compiled to one parameterised ClickHouse
boolean expression over allow-listed columns."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from itertools import count
from typing import Any

from services import errors

OPS = ("is", "is_not", "contains", "starts_with")
# Dimensions read from an events column: API name -> column. Only these names reach SQL.
COLUMNS = {
    "country": "country",
    "region": "region",
    "city": "city",
    "continent": "continent",
    "device": "device",
    "browser": "browser",
    "os": "os",
    "referrer": "referrer",
    "trigger": "trigger",
}
# Dimensions kept in PostgreSQL: a condition on them is resolved to a set of ids first (links
# for link, campaign, folder and tag; rules for rule), then tested on the id column.
ID_SETS = {"link": "link_id", "campaign": "link_id", "folder": "link_id", "tag": "link_id"}
ID_SETS_CLICKS = {**ID_SETS, "rule": "rule_id"}
DIMENSIONS = (*COLUMNS, *ID_SETS_CLICKS)
MAX_DEPTH = 8
MAX_CONDITIONS = 100
MAX_VALUES = 1000


@dataclass(frozen=True)
class Condition:
    """dimension op values, at path in the request."""

    dimension: str
    op: str
    values: tuple[str, ...]
    path: str

    def ids(self) -> tuple[int, ...]:
        """The values as ids (is / is_not on an id dimension; checked by parse)."""
        return tuple(int(v) for v in self.values)


@dataclass(frozen=True)
class AllOf:
    """Every node holds."""

    nodes: tuple[Node, ...]


@dataclass(frozen=True)
class AnyOf:
    """At least one node holds."""

    nodes: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    """The node does not hold."""

    node: Node


Node = Condition | AllOf | AnyOf | Not


@dataclass(frozen=True)
class Predicate:
    """A compiled tree: SQL, its parameters and the columns it reads."""

    sql: str
    params: tuple[tuple[str, Any], ...]
    columns: frozenset[str]


def parse(message: Any, path: str = "filters") -> Node:
    """The typed tree of a FilterNode message; 400 naming the node's path when it is not valid."""
    found = _parse(message, path, 1)
    if sum(1 for _ in conditions(found)) > MAX_CONDITIONS:
        raise errors.invalid_argument(path, f"{path} holds more than {MAX_CONDITIONS} conditions")
    return found


def _parse(message: Any, path: str, depth: int) -> Node:
    if depth > MAX_DEPTH:
        raise errors.invalid_argument(path, f"{path} nests filters deeper than {MAX_DEPTH} levels")
    is_condition = bool(message.dimension or message.op or message.values)
    given = [
        name
        for name, present in (
            ("and", bool(message.all)),
            ("or", bool(message.any)),
            ("not", message.HasField("negate")),
            ("a condition", is_condition),
        )
        if present
    ]
    if len(given) != 1:
        said = f" ({' and '.join(given)} given)" if given else ""
        raise errors.invalid_argument(
            path, f"{path} must set exactly one of and, or, not, or a condition{said}"
        )
    if message.all:
        return AllOf(
            tuple(_parse(m, f"{path}.and[{i}]", depth + 1) for i, m in enumerate(message.all))
        )
    if message.any:
        return AnyOf(
            tuple(_parse(m, f"{path}.or[{i}]", depth + 1) for i, m in enumerate(message.any))
        )
    if message.HasField("negate"):
        return Not(_parse(message.negate, f"{path}.not", depth + 1))
    return _condition(message, path)


def _condition(message: Any, path: str) -> Condition:
    if message.dimension not in DIMENSIONS:
        raise errors.invalid_argument(
            f"{path}.dimension", f"{path}.dimension must be one of {', '.join(DIMENSIONS)}"
        )
    if message.op not in OPS:
        raise errors.invalid_argument(f"{path}.op", f"{path}.op must be one of {', '.join(OPS)}")
    values = tuple(message.values)
    if not values:
        raise errors.invalid_argument(f"{path}.values", f"{path}.values must list a value")
    if len(values) > MAX_VALUES:
        raise errors.invalid_argument(
            f"{path}.values", f"{path}.values lists more than {MAX_VALUES} values"
        )
    found = Condition(message.dimension, message.op, values, path)
    if found.dimension in ID_SETS_CLICKS and found.op in ("is", "is_not"):
        for i, value in enumerate(values):
            if not value.isdigit() or len(value) > 18:
                raise errors.invalid_argument(
                    f"{path}.values[{i}]",
                    f"{path}.values[{i}] must be a {found.dimension} id (is / is_not on"
                    f" {found.dimension} take ids)",
                )
    return found


def conditions(node: Node) -> Iterator[Condition]:
    """Every condition of the tree, depth first."""
    if isinstance(node, Condition):
        yield node
    elif isinstance(node, Not):
        yield from conditions(node.node)
    else:
        for child in node.nodes:
            yield from conditions(child)


def needs_ids(condition: Condition) -> bool:
    """True for a condition tested against a set of ids resolved in PostgreSQL."""
    return condition.dimension in ID_SETS_CLICKS


def compile_tree(node: Node, id_sets: Mapping[str, frozenset[int]]) -> Predicate:
    """One boolean expression of node; id_sets: each id condition's path -> the ids it matches
    (is / contains / starts_with; is_not is the complement of its values' set)."""
    params: dict[str, Any] = {}
    columns: set[str] = set()
    names = (f"ft{i}" for i in count())

    def walk(n: Node) -> str:
        if isinstance(n, AllOf):
            return "(" + " AND ".join(walk(c) for c in n.nodes) + ")"
        if isinstance(n, AnyOf):
            return "(" + " OR ".join(walk(c) for c in n.nodes) + ")"
        if isinstance(n, Not):
            return f"(NOT {walk(n.node)})"
        return condition_sql(n, id_sets, params, names, columns)

    return Predicate(walk(node), tuple(params.items()), frozenset(columns))


def condition_sql(
    c: Condition,
    id_sets: Mapping[str, frozenset[int]],
    params: dict[str, Any],
    names: Iterator[str],
    columns: set[str],
) -> str:
    """The SQL of one condition, its values added to params under fresh names."""
    if needs_ids(c):
        column = ID_SETS_CLICKS[c.dimension]
        columns.add(column)
        ids = id_sets[c.path]
        if not ids:  # no id matches: is never holds, is_not always does
            return "0" if c.op != "is_not" else "1"
        name = next(names)
        params[name] = tuple(sorted(ids))  # a tuple renders as an IN list
        return f"({column} {'NOT IN' if c.op == 'is_not' else 'IN'} %({name})s)"
    column = COLUMNS[c.dimension]
    columns.add(column)
    if c.op in ("is", "is_not"):
        name = next(names)
        params[name] = c.values
        return f"({column} {'NOT IN' if c.op == 'is_not' else 'IN'} %({name})s)"
    tests = []
    for value in c.values:
        name = next(names)
        params[name] = value
        # position / substring rather than LIKE: no pattern characters to escape; the byte
        # prefix of UTF-8 text is its character prefix.
        if c.op == "contains":
            tests.append(f"position({column}, %({name})s) > 0")
        else:
            tests.append(f"substring({column}, 1, length(%({name})s)) = %({name})s")
    return "(" + " OR ".join(tests) + ")"
