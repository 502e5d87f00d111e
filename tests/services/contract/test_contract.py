"""The contract is built once from the descriptors and every view of it agrees."""

from __future__ import annotations

from services import protos
from services.contract.compiled import build_contract, contract
from services.contract.routes import Streaming


def test_built_once_per_process() -> None:
    assert contract() is contract()
    assert contract().binders is contract().binders


def test_every_rpc_has_a_policy_and_every_route_a_binder() -> None:
    built = contract()
    for module, _grpc, name in protos.SERVICE_MODULES.values():
        service = module.DESCRIPTOR.services_by_name[name]
        for method in service.methods:
            assert f"/{service.full_name}/{method.name}" in built.policies
    assert set(built.binders) == {route.key for route in built.routes}
    assert all(built.binder(route).route is route for route in built.routes)
    assert set(built.service_names) == set(protos.SERVICES)


def test_the_batch_router_is_over_the_query_services_unary_reads() -> None:
    router = contract().read_router("query")
    assert router.routes
    for route in router.routes:
        assert route.service == "query" and route.streaming is Streaming.UNARY
        # GETs, and the query API's POST (a read whose request is its body).
        assert route.http_method == "GET" or (route.options.cacheable and route.body == "*")
    assert "POST /api/analytics/query" in {r.key for r in router.routes}
    assert "POST /api/analytics/embed/tokens" not in {r.key for r in router.routes}
    assert [r.key for r in router.routes] == [
        r.key for r in contract().routes if r in set(router.routes)
    ]


def test_a_contract_of_some_services_only() -> None:
    only_audit = build_contract({"audit": protos.SERVICE_MODULES["audit"]})
    assert {route.service for route in only_audit.routes} == {"audit"}
