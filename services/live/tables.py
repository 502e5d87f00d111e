"""The ClickHouse table and columns each ingested event kind is written to."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

CLICK_COLUMNS = (
    "event_id", "workspace_id", "link_id", "timestamp", "country", "region", "city", "continent",
    "device", "browser", "os", "referrer", "referrer_url", "trigger", "visitor_id", "rule_id",
    "condition_id", "destination_url", "is_bot",
)  # fmt: skip

# The click dimensions a lead or sale copies from the click it converts.
ATTRIBUTED = (
    "link_id", "country", "region", "city", "continent", "device", "browser", "os", "referrer",
    "trigger", "visitor_id", "is_bot",
)  # fmt: skip

LEAD_COLUMNS = (
    "event_id", "workspace_id", "click_id", "timestamp", "customer_id", "event_name", *ATTRIBUTED,
)  # fmt: skip

SALE_COLUMNS = (
    "event_id", "workspace_id", "click_id", "timestamp", "customer_id", "event_name", "amount",
    "currency", "invoice_id", *ATTRIBUTED,
)  # fmt: skip


@dataclass(frozen=True)
class Table:
    """Where one event kind goes: table name and the columns of its rows."""

    kind: str
    name: str
    columns: tuple[str, ...]

    @cached_property
    def timestamp_at(self) -> int:
        """Position of the timestamp column."""
        return self.columns.index("timestamp")


TABLES = {
    "click": Table("click", "clicks", CLICK_COLUMNS),
    "lead": Table("lead", "leads", LEAD_COLUMNS),
    "sale": Table("sale", "sales", SALE_COLUMNS),
}
