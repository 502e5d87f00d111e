"""Batch items: a read route named by its path, string parameters bound into its request."""

from __future__ import annotations

import grpc
import pytest

from services.contract.compiled import contract
from services.contract.router import ReadRouter
from services.errors import ApiError


@pytest.fixture(scope="module")
def router() -> ReadRouter:
    return contract().read_router("query")


def test_literal_and_templated_paths(router):
    bound = router.bind("/api/analytics/workspace/overview", {"days": "7", "country": "-DE"})
    assert bound.route.rpc == "GetWorkspaceOverview"
    assert bound.message.days == 7 and bound.message.country == "-DE"
    for path, params in (
        ("/api/analytics/42/summary", {}),
        ("/api/analytics/:linkId/summary", {"linkId": "42"}),
        ("/api/analytics/{linkId}/summary", {"linkId": "42"}),
    ):
        bound = router.bind(path, params)
        assert bound.route.rpc == "GetLinkSummary" and bound.message.link_id == 42
    bound = router.bind("/api/analytics/5/rules/9/conditions", {"includeBots": "true"})
    assert (bound.message.link_id, bound.message.rule_id) == (5, 9)
    assert bound.message.include_bots is True


def test_proto_spellings_are_accepted(router):
    bound = router.bind("/api/analytics/overview", {"campaign_id": "3", "include_bots": "1"})
    assert bound.message.campaign_id == 3 and bound.message.include_bots


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/api/analytics/workspace/overview", {"days": "x"}, "days"),
        ("/api/analytics/workspace/overview", {"days": "99999999999"}, "days"),
        ("/api/analytics/workspace/overview", {"includeBots": "maybe"}, "includeBots"),
        ("/api/analytics/workspace/overview", {"nope": "1"}, "nope"),
        ("/api/analytics/abc/summary", {}, "linkId"),
        ("/api/analytics/:linkId/summary", {}, "linkId"),
    ],
)
def test_bad_parameters_are_named(router, path, params, field):
    with pytest.raises(ApiError) as raised:
        router.bind(path, params)
    assert raised.value.code == grpc.StatusCode.INVALID_ARGUMENT and raised.value.field == field


def test_only_read_routes_of_the_query_service(router):
    for path in ("/api/analytics/export", "/api/analytics/live", "/v1/analytics", "/api/x"):
        with pytest.raises(ApiError) as raised:
            router.bind(path, {})
        assert raised.value.code == grpc.StatusCode.NOT_FOUND
