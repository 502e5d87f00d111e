"""Every RPC with a scope refuses a key holding every other scope (403 insufficient_scope),
whether it is reached over gRPC or, for the REST routes, through the gateway."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf.message_factory import GetMessageClass

from services import protos
from services.auth.tokens import KNOWN_SCOPES
from services.contract.compiled import contract

SERVICE_PROCESS = {
    "QueryService": "query",
    "LiveService": "live",
    "ExportService": "export",
    "AuditService": "audit",
}


def _methods():
    for module, _grpc, service_name in protos.SERVICE_MODULES.values():
        service = module.DESCRIPTOR.services_by_name[service_name]
        for method in service.methods:
            yield service, method


async def _call(channel: grpc.aio.Channel, service, method, metadata) -> grpc.StatusCode:
    path = f"/{service.full_name}/{method.name}"
    request = GetMessageClass(method.input_type)()
    kwargs = {"request_serializer": lambda m: m.SerializeToString(), "response_deserializer": None}
    try:
        if method.client_streaming:
            call = channel.stream_unary(path, **kwargs)

            async def nothing():
                return
                yield

            await call(nothing(), metadata=metadata)
        elif method.server_streaming:
            stream = channel.unary_stream(path, **kwargs)(request, metadata=metadata)
            async for _ in stream:
                pass
        else:
            await channel.unary_unary(path, **kwargs)(request, metadata=metadata)
    except grpc.aio.AioRpcError as error:
        assert error.code() != grpc.StatusCode.PERMISSION_DENIED or "scope" in error.details()
        return error.code()
    return grpc.StatusCode.OK


async def test_every_rpc_refuses_a_key_without_its_scope(system, tenant) -> None:
    policies = contract().policies
    scoped = [(s, m) for s, m in _methods() if not policies[f"/{s.full_name}/{m.name}"].public]
    assert len(scoped) > 50
    keys = {}
    for scope in KNOWN_SCOPES:
        keys[scope] = await tenant(scopes=tuple(s for s in KNOWN_SCOPES if s != scope))
    refused = []
    for service, method in scoped:
        scope = policies[f"/{service.full_name}/{method.name}"].scope
        who = keys[scope]
        async with system.channel(SERVICE_PROCESS[service.name]) as channel:
            code = await _call(channel, service, method, who.metadata)
        refused.append((method.name, code))
    assert all(code == grpc.StatusCode.PERMISSION_DENIED for _, code in refused), [
        r for r in refused if r[1] != grpc.StatusCode.PERMISSION_DENIED
    ]


@pytest.mark.parametrize(
    ("verb", "path", "scope"),
    [
        ("GET", "/api/analytics/workspace/overview", "analytics:read"),
        ("POST", "/api/track/click", "events:write"),
        ("GET", "/api/analytics/audit-log", "workspace:update"),
        ("POST", "/api/analytics/exports", "analytics:read"),
        ("POST", "/api/analytics/embed/tokens", "workspace:update"),
    ],
)
async def test_rest_routes_answer_403_naming_the_scope(http, tenant, verb, path, scope) -> None:
    who = await tenant(scopes=tuple(s for s in KNOWN_SCOPES if s != scope))
    r = await http.request(verb, path, headers=who.headers, json={} if verb == "POST" else None)
    assert r.status_code == 403, r.text
    assert r.json()["error"]["code"] == "insufficient_scope"
    assert scope in r.json()["error"]["message"]
