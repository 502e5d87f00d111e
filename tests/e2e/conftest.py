"""Fixtures of the route tests: one dataset workspace per module, and the FX rates."""

from __future__ import annotations

import pytest

from tests.e2e import dataset as d
from tests.e2e.dataset import Dataset


@pytest.fixture(scope="module")
async def ds(system, pg, ch) -> Dataset:
    """One workspace with the dataset, shared by this module's tests (they only read)."""
    return await d.build(pg, ch)


@pytest.fixture(scope="module")
async def rates(pg) -> dict[str, tuple[int, float]]:
    """FX rates as PostgreSQL holds them."""
    return await d.fx_rates(pg)
