"""The contract as the code uses it: the compiled descriptors walked once into methods, routes,
request binders, policies and the batch router."""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType

from google.api import annotations_pb2
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message

from services import protos
from services.contract.binding import RequestBinder
from services.contract.honoured import honoured_fields, refuse_unhonoured
from services.contract.paths import match_order_key
from services.contract.router import ReadRouter
from services.contract.routes import Route, Streaming, build_route, http_bindings

logger = logging.getLogger(__name__)

ServiceModules = Mapping[str, tuple[ModuleType, ModuleType, str]]


@dataclass(frozen=True)
class Method:
    """One RPC of the contract and its policy (scope, feature, public, honoured fields)."""

    service: str
    descriptor: ServiceDescriptor
    method: MethodDescriptor
    options: protos.options_pb2.RouteOptions
    # Names of the request's top-level fields the RPC honours; None: all of them.
    honoured: frozenset[str] | None = None

    @property
    def grpc_path(self) -> str:
        """The full gRPC method path, e.g. /linkpulse.v1.QueryService/GetOverview."""
        return f"/{self.descriptor.full_name}/{self.method.name}"

    def refuse_unhonoured(self, request: Message) -> None:
        """INVALID_ARGUMENT naming a field set in request that this RPC does not honour."""
        refuse_unhonoured(request, self.honoured, self.options.proto_field_names)


@dataclass(frozen=True)
class Contract:
    """Every RPC, every servable HTTP binding and its binder, by the names callers use."""

    methods: tuple[Method, ...]
    routes: tuple[Route, ...]
    binders: Mapping[str, RequestBinder]

    @functools.cached_property
    def service_names(self) -> dict[str, str]:
        """Service key (query, live, ...) to the service's full name (linkpulse.v1.QueryService)."""
        return {m.service: m.descriptor.full_name for m in self.methods}

    @functools.cached_property
    def policies(self) -> dict[str, protos.options_pb2.RouteOptions]:
        """Full gRPC method path to the RPC's RouteOptions (what the auth interceptor enforces)."""
        return {m.grpc_path: m.options for m in self.methods}

    @functools.cached_property
    def by_path(self) -> dict[str, Method]:
        """Full gRPC method path to the RPC."""
        return {m.grpc_path: m for m in self.methods}

    def binder(self, route: Route) -> RequestBinder:
        """The request binder of route."""
        return self.binders[route.key]

    def read_router(self, service: str = "query") -> ReadRouter:
        """The router over one service's unary GET routes and its cacheable (read-only) POST
        routes taking a body (batch items name them)."""
        reads = [
            r
            for r in self.routes
            if r.service == service
            and r.streaming is Streaming.UNARY
            and (r.http_method == "GET" or (r.options.cacheable and r.body == "*"))
        ]
        return ReadRouter([self.binders[r.key] for r in reads])


def _methods(modules: ServiceModules) -> list[Method]:
    found = []
    for service_key, (pb2_module, _grpc_module, service_name) in modules.items():
        service = pb2_module.DESCRIPTOR.services_by_name[service_name]
        for method in service.methods:
            options = protos.options_pb2.RouteOptions()
            options.CopyFrom(method.GetOptions().Extensions[protos.options_pb2.route])
            honoured = honoured_fields(method, options)
            found.append(Method(service_key, service, method, options, honoured))
    return found


def _routes(methods: list[Method]) -> tuple[Route, ...]:
    routes: list[Route] = []
    for m in methods:
        rule = m.method.GetOptions().Extensions[annotations_pb2.http]
        for http_method, template, body in http_bindings(rule):
            route = build_route(m.service, m.descriptor, m.method, http_method, template, body)
            if not route.is_servable:
                logger.warning(
                    "%s: %s streaming is not served over HTTP", route.key, route.streaming.value
                )
                continue
            routes.append(route)
    keys = [r.key for r in routes]
    duplicates = {k for k in keys if keys.count(k) > 1}
    if duplicates:
        raise ValueError(f"HTTP bindings declared twice: {sorted(duplicates)}")
    # Stable: methods sharing a path keep their declaration order.
    routes.sort(key=lambda r: match_order_key(r.template))
    return tuple(routes)


def build_contract(service_modules: ServiceModules | None = None) -> Contract:
    """The contract of the given (by default the compiled) service modules."""
    methods = _methods(protos.SERVICE_MODULES if service_modules is None else service_modules)
    routes = _routes(methods)
    binders = {route.key: RequestBinder(route) for route in routes}
    return Contract(tuple(methods), routes, binders)


@functools.cache
def contract() -> Contract:
    """The compiled contract, built once per process."""
    return build_contract()
