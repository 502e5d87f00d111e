"""Which redirect rule of a link a demo click matches (first rule by priority, any condition)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Condition:
    """One stored condition: id, click field, operator and value (lists comma-separated)."""

    condition_id: int
    field: str
    operator: str
    value: str

    def matches(self, attrs: Mapping[str, str]) -> bool:
        """True when the click attributes satisfy the condition."""
        actual = attrs.get(self.field, "")
        if self.operator == "eq":
            return actual == self.value
        if self.operator == "neq":
            return actual != self.value
        if self.operator in ("in", "not_in"):
            listed = actual in {v.strip() for v in self.value.split(",")}
            return listed if self.operator == "in" else not listed
        if self.operator == "contains":
            return self.value in actual
        raise ValueError(f"unknown operator {self.operator!r}")


@dataclass(frozen=True)
class Rule:
    """A stored rule with its conditions; it matches when any condition does."""

    rule_id: int
    priority: int
    destination_url: str
    conditions: tuple[Condition, ...]


def first_match(rules: tuple[Rule, ...], attrs: Mapping[str, str]) -> tuple[int, int, str] | None:
    """(rule_id, condition_id, destination_url) of the first matching rule, or None."""
    for rule in sorted(rules, key=lambda r: (r.priority, r.rule_id)):
        for condition in rule.conditions:
            if condition.matches(attrs):
                return rule.rule_id, condition.condition_id, rule.destination_url
    return None
