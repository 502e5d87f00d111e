"""Fixtures of the cluster suite: it runs only under `make test-cluster` (LINKPULSE_TEST_CLUSTER=1),
where tests/conftest.py puts the whole system on the dev ClickHouse cluster."""

from __future__ import annotations

import pytest

from services.devstack.cluster_layout import ClusterLayout
from tests import conftest


@pytest.fixture(scope="session")
def cluster_layout() -> ClusterLayout:
    """The dev cluster the system under test runs on (its nodes may be stopped and started)."""
    if not conftest.CLUSTER:
        pytest.skip("the cluster suite runs under `make test-cluster` (LINKPULSE_TEST_CLUSTER=1)")
    return conftest._LAYOUT
