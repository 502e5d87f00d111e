"""Validating leads and sales and building their rows from the click they are attributed to."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services import errors, protos
from services.ids import MAX_ID
from services.live.enrich import MAX_FIELD, event_time
from services.live.tables import ATTRIBUTED


def _text(field: str, value: str, required: bool = False) -> str:
    value = value.strip()
    if required and not value:
        raise errors.invalid_argument(field, f"{field} is required")
    if len(value) > MAX_FIELD:
        raise errors.invalid_argument(field, f"{field} is longer than {MAX_FIELD}")
    return value


def client_event_id(value: int) -> int:
    """A client-chosen event id (0 = none), checked to be in [1, 2^53)."""
    if value and not 0 < value <= MAX_ID:
        raise errors.invalid_argument("event_id", "event_id must be in [1, 2^53)")
    return value


def check_lead(event: protos.live_pb2.LeadEvent) -> None:
    """Refuse a lead without a valid click id, customer id or with oversize fields."""
    if event.click_id <= 0:
        raise errors.invalid_argument("click_id", "click_id is required")
    _text("customer_id", event.customer_id, required=True)
    _text("event_name", event.event_name)
    client_event_id(event.event_id)


def check_sale(event: protos.live_pb2.SaleEvent, supported: set[str]) -> str:
    """Refuse a malformed sale; returns its currency code."""
    if event.click_id < 0:
        raise errors.invalid_argument("click_id", "click_id must be positive")
    customer = _text("customer_id", event.customer_id)
    if not event.click_id and not customer:
        raise errors.invalid_argument("click_id", "a sale needs click_id or customer_id")
    if event.amount < 0:
        raise errors.invalid_argument("amount", "amount must be >= 0 (minor units)")
    currency = event.currency.strip().upper()
    if not currency:
        raise errors.invalid_argument("currency", "currency is required (ISO-4217)")
    if currency not in supported:
        raise errors.invalid_argument("currency", f"currency {currency!r} is not supported")
    _text("invoice_id", event.invoice_id)
    _text("event_name", event.event_name)
    client_event_id(event.event_id)
    return currency


def _conversion_row(
    event: protos.live_pb2.LeadEvent | protos.live_pb2.SaleEvent,
    default_name: str,
    workspace_id: int,
    event_id: int,
    click: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    """Columns leads and sales share: ids, time, customer, name and the click's dimensions."""
    return {
        "event_id": event_id,
        "workspace_id": workspace_id,
        "click_id": int(click["click_id"]),
        "timestamp": event_time("timestamp", event.timestamp, now),
        "customer_id": event.customer_id.strip(),
        "event_name": event.event_name.strip() or default_name,
        **{c: click[c] for c in ATTRIBUTED},
    }


def lead_row(
    event: protos.live_pb2.LeadEvent,
    *,
    workspace_id: int,
    event_id: int,
    click: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    """The leads-table row of a checked lead attributed to click."""
    return _conversion_row(event, "lead", workspace_id, event_id, click, now)


def sale_row(
    event: protos.live_pb2.SaleEvent,
    *,
    workspace_id: int,
    event_id: int,
    currency: str,
    click: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    """The sales-table row of a checked sale attributed to click."""
    return {
        **_conversion_row(event, "sale", workspace_id, event_id, click, now),
        "amount": event.amount,
        "currency": currency,
        "invoice_id": event.invoice_id.strip(),
    }
