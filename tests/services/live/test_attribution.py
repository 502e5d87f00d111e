"""Attribution of leads and sales when neither Redis nor ClickHouse knows the click."""

from __future__ import annotations

import os

import grpc
import pytest
from redis.asyncio import Redis

from services.errors import ApiError
from services.live.attribution import Attribution
from services.live.stream import Keys
from services.stores.clickhouse import ClickHouse
from tests.services.live.conftest import PREFIX

WORKSPACE = 800_000 + os.getpid() % 90_000


async def test_an_unknown_click_is_not_found_naming_the_field(redis: Redis, ch: ClickHouse) -> None:
    attribution = Attribution(redis, ch, Keys(f"{PREFIX}:attribution"), cache_seconds=3600)
    with pytest.raises(ApiError) as bad:
        await attribution.click(WORKSPACE, 987_654_321, "click_id")
    error = bad.value
    assert (error.code, error.reason, error.field) == (
        grpc.StatusCode.NOT_FOUND,
        "not_found",
        "click_id",
    )
    assert error.message == "click 987654321 not found in this workspace"


async def test_a_customer_without_a_lead_is_not_found_naming_the_field(
    redis: Redis, ch: ClickHouse
) -> None:
    attribution = Attribution(redis, ch, Keys(f"{PREFIX}:attribution"), cache_seconds=3600)
    with pytest.raises(ApiError) as bad:
        await attribution.customer(WORKSPACE, "nobody", "customer_id")
    error = bad.value
    assert (error.code, error.field) == (grpc.StatusCode.NOT_FOUND, "customer_id")
    assert error.message == "no lead of customer 'nobody' in this workspace"
