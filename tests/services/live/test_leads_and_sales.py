"""Checking leads and sales and building their attributed rows."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services import protos
from services.errors import ApiError
from services.live import leads_and_sales
from services.live.tables import LEAD_COLUMNS, SALE_COLUMNS

CLICK = {
    "click_id": 77, "link_id": 3, "country": "FR", "region": "", "city": "Paris",
    "continent": "EU", "device": "mobile", "browser": "Safari", "os": "iOS", "referrer": "x.com",
    "trigger": "qr", "visitor_id": "v", "is_bot": 0,
}  # fmt: skip
NOW = datetime(2026, 11, 2, tzinfo=UTC)


@pytest.mark.parametrize(
    ("sale", "field"),
    [
        (protos.live_pb2.SaleEvent(amount=1, currency="USD"), "click_id"),
        (protos.live_pb2.SaleEvent(click_id=1, amount=-1, currency="USD"), "amount"),
        (protos.live_pb2.SaleEvent(click_id=1, amount=1), "currency"),
        (protos.live_pb2.SaleEvent(click_id=1, amount=1, currency="XYZ"), "currency"),
        (
            protos.live_pb2.SaleEvent(click_id=1, currency="USD", invoice_id="i" * 3000),
            "invoice_id",
        ),
    ],
)
def test_bad_sales_name_their_field(sale: protos.live_pb2.SaleEvent, field: str) -> None:
    with pytest.raises(ApiError) as bad:
        leads_and_sales.check_sale(sale, {"USD", "EUR"})
    assert bad.value.field == field


def test_bad_leads_name_their_field() -> None:
    for lead, field in [
        (protos.live_pb2.LeadEvent(customer_id="c"), "click_id"),
        (protos.live_pb2.LeadEvent(click_id=1, customer_id="  "), "customer_id"),
        (protos.live_pb2.LeadEvent(click_id=1, customer_id="c", event_id=-1), "event_id"),
    ]:
        with pytest.raises(ApiError) as bad:
            leads_and_sales.check_lead(lead)
        assert bad.value.field == field


def test_rows_copy_the_click_dimensions() -> None:
    sale = protos.live_pb2.SaleEvent(customer_id="c1", amount=250, currency="eur")
    currency = leads_and_sales.check_sale(sale, {"EUR"})
    row = leads_and_sales.sale_row(
        sale, workspace_id=9, event_id=5, currency=currency, click=CLICK, now=NOW
    )
    assert set(row) == set(SALE_COLUMNS)
    assert (row["link_id"], row["click_id"], row["city"], row["currency"]) == (
        3,
        77,
        "Paris",
        "EUR",
    )
    lead = leads_and_sales.lead_row(
        protos.live_pb2.LeadEvent(click_id=77, customer_id="c1"),
        workspace_id=9,
        event_id=6,
        click=CLICK,
        now=NOW,
    )
    assert set(lead) == set(LEAD_COLUMNS)
    assert (lead["event_name"], lead["trigger"], lead["timestamp"]) == ("lead", "qr", NOW)
