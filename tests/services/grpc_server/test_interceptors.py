"""The shared server interceptors, driven over a real grpc.aio server with a tiny generic service.

ErrorInterceptor turns whatever escapes a handler into one status with google.rpc.ErrorInfo;
AuthInterceptor authenticates the bearer token against the test PostgreSQL database, enforces the
RPC's scope and plan feature, spends the rate limit in Redis and names the workspace in a trailer.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from redis.asyncio import Redis

from services import errors, protos, request_context
from services.auth import principal as principals
from services.auth.ratelimit import RateLimiter
from services.auth.resolver import TokenResolver
from services.config import Settings
from services.grpc_server.interceptors import AuthInterceptor, ErrorInterceptor
from services.grpc_server.trailers import WORKSPACE_TRAILER
from services.request_context import RequestContext
from tests.conftest import Tenant

SERVICE = "linkpulse.test.Probe"
RouteOptions = protos.options_pb2.RouteOptions
POLICIES = {
    f"/{SERVICE}/WhoAmI": RouteOptions(scope="analytics:read"),
    f"/{SERVICE}/Deep": RouteOptions(scope="analytics:read", feature="deep_links"),
    f"/{SERVICE}/Feed": RouteOptions(scope="analytics:read"),
    f"/{SERVICE}/Public": RouteOptions(public=True),
}
# Failures the Fail RPC raises, by the name sent as its request.
FAILURES: dict[str, Callable[[], BaseException]] = {
    "api": lambda: errors.ApiError(
        grpc.StatusCode.NOT_FOUND, "not_found", "link not found", trailers=(("x-extra", "1"),)
    ),
    "field": lambda: errors.invalid_argument("days", "days must be at most 90"),
    "store": lambda: errors.StoreUnavailable("clickhouse is down"),
    "bug": lambda: RuntimeError("secret internal detail"),
}

Handler = Callable[[bytes, grpc.aio.ServicerContext], Awaitable[bytes]]


def _probe_handlers(pool: asyncpg.Pool) -> dict[str, grpc.RpcMethodHandler]:
    """The Probe service's RPCs on raw bytes; Query runs its request as SQL on pool."""

    async def who_am_i(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        context.set_trailing_metadata((("x-handler", "kept"),))
        caller = principals.current()
        return f"{caller.workspace_id} {request_context.current().request_id}".encode()

    async def public(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return b"public " + request

    async def feed(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
        for number in range(3):
            yield f"{principals.current().workspace_id}:{number}".encode()
        if request == b"fail":
            raise FAILURES["bug"]()

    async def fail(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        raise FAILURES[request.decode()]()

    async def query(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        await pool.execute(request.decode())
        return b"done"

    async def aborts(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "closed by the handler")
        return b""

    async def unimplemented(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        # What a generated servicer's default method does.
        context.set_code(grpc.StatusCode.UNIMPLEMENTED)
        context.set_details("Method not implemented!")
        raise NotImplementedError("Method not implemented!")

    unary: dict[str, Handler] = {
        "WhoAmI": who_am_i,
        "Deep": who_am_i,
        "Public": public,
        "Fail": fail,
        "Query": query,
        "Aborts": aborts,
        "Later": unimplemented,
    }
    handlers = {name: grpc.unary_unary_rpc_method_handler(fn) for name, fn in unary.items()}
    handlers["Feed"] = grpc.unary_stream_rpc_method_handler(feed)
    return handlers


@asynccontextmanager
async def serving(
    pool: asyncpg.Pool, *interceptors: grpc.aio.ServerInterceptor
) -> AsyncIterator[grpc.aio.Channel]:
    """The Probe service behind interceptors on a loopback port, and a channel to it."""
    server = grpc.aio.server(interceptors=interceptors)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE, _probe_handlers(pool)),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield channel
    finally:
        await server.stop(grace=None)


@dataclass
class Denials:
    """The refusals the auth interceptor reported: (workspace, method, reason, request id)."""

    seen: list[tuple[int, str, str, str]] = field(default_factory=list)

    def __call__(
        self,
        principal: principals.Principal,
        method: str,
        refusal: errors.ApiError,
        origin: RequestContext,
    ) -> None:
        self.seen.append((principal.workspace_id, method, refusal.reason, origin.request_id))


@dataclass
class Probe:
    """A channel to the Probe service behind both interceptors, and what they reported."""

    channel: grpc.aio.Channel
    denials: Denials

    async def call(
        self, method: str, request: bytes = b"", metadata: tuple[tuple[str, str], ...] = ()
    ) -> tuple[bytes, dict[str, str]]:
        """Call a unary RPC; its response and trailing metadata."""
        call = self.channel.unary_unary(f"/{SERVICE}/{method}")(request, metadata=metadata)
        response = await call
        return response, _trailers(await call.trailing_metadata())

    async def stream(
        self, request: bytes = b"", metadata: tuple[tuple[str, str], ...] = ()
    ) -> list[bytes]:
        """Read the whole Feed stream."""
        call = self.channel.unary_stream(f"/{SERVICE}/Feed")(request, metadata=metadata)
        return [item async for item in call]

    async def refusal(
        self, method: str, request: bytes = b"", metadata: tuple[tuple[str, str], ...] = ()
    ) -> grpc.aio.AioRpcError:
        """The error status a unary RPC ends with."""
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await self.call(method, request, metadata)
        return raised.value


def _trailers(metadata: Any) -> dict[str, str]:
    """Trailing metadata as a dict (text values only)."""
    return {key: value for key, value in (metadata or ()) if isinstance(value, str)}


def error_info(error: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo:
    """The ErrorInfo in a failed call's grpc-status-details-bin, checked against its status."""
    raw = [v for k, v in (error.trailing_metadata() or ()) if k == errors.STATUS_DETAILS_KEY]
    assert len(raw) == 1, f"expected one {errors.STATUS_DETAILS_KEY} trailer"
    status = status_pb2.Status.FromString(raw[0])
    assert (status.code, status.message) == (error.code().value[0], error.details())
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    return info


def bearer(tenant: Tenant, **extra: str) -> tuple[tuple[str, str], ...]:
    """gRPC metadata authenticating as tenant, plus extra entries (x_workspace_id=...)."""
    return (*tenant.metadata, *((k.replace("_", "-"), v) for k, v in extra.items()))


@pytest.fixture(scope="module")
async def probe(pg: asyncpg.Pool) -> AsyncIterator[Probe]:
    """The Probe service behind ErrorInterceptor then AuthInterceptor (no rate limit)."""
    denials = Denials()
    auth = AuthInterceptor(TokenResolver(pg, ttl=0.0), POLICIES, on_denied=denials)
    async with serving(pg, ErrorInterceptor(), auth) as channel:
        yield Probe(channel, denials)


@pytest.fixture(scope="module")
async def bare(pg: asyncpg.Pool) -> AsyncIterator[Probe]:
    """The Probe service behind ErrorInterceptor alone."""
    async with serving(pg, ErrorInterceptor()) as channel:
        yield Probe(channel, Denials())


# ErrorInterceptor


async def test_an_api_error_becomes_its_status_with_error_info_and_trailers(bare: Probe) -> None:
    error = await bare.refusal("Fail", b"api")
    assert (error.code(), error.details()) == (grpc.StatusCode.NOT_FOUND, "link not found")
    info = error_info(error)
    assert (info.reason, info.domain, dict(info.metadata)) == ("not_found", "linkpulse", {})
    assert _trailers(error.trailing_metadata())["x-extra"] == "1"


async def test_the_field_of_an_invalid_argument_is_in_the_error_info(bare: Probe) -> None:
    error = await bare.refusal("Fail", b"field")
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    info = error_info(error)
    assert (info.reason, dict(info.metadata)) == ("invalid_argument", {"field": "days"})


async def test_an_unreachable_store_is_unavailable(bare: Probe) -> None:
    error = await bare.refusal("Fail", b"store")
    assert (error.code(), error.details()) == (grpc.StatusCode.UNAVAILABLE, "clickhouse is down")
    assert error_info(error).reason == "unavailable"


@pytest.mark.parametrize(
    ("sql", "code", "reason"),
    [
        ("SELECT 1 / 0", grpc.StatusCode.INVALID_ARGUMENT, "invalid_argument"),
        (
            "CREATE TEMP TABLE probe_unique (id int PRIMARY KEY);"
            " INSERT INTO probe_unique VALUES (1); INSERT INTO probe_unique VALUES (1)",
            grpc.StatusCode.ALREADY_EXISTS,
            "already_exists",
        ),
    ],
    ids=["data exception", "unique violation"],
)
async def test_postgresql_errors_map_to_their_codes(
    bare: Probe, sql: str, code: grpc.StatusCode, reason: str
) -> None:
    error = await bare.refusal("Query", sql.encode())
    assert error.code() == code
    assert error_info(error).reason == reason


async def test_a_bug_is_internal_error_and_logged_without_its_detail(
    bare: Probe, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="linkpulse.rpc"):
        error = await bare.refusal("Fail", b"bug")
        # An SQL error outside the mapped SQLSTATE classes is a bug too.
        undefined = await bare.refusal("Query", b"SELECT * FROM no_such_table")
    for failed in (error, undefined):
        assert (failed.code(), failed.details()) == (grpc.StatusCode.INTERNAL, "internal error")
        assert error_info(failed).reason == "internal"
    assert f"unhandled error in /{SERVICE}/Fail" in caplog.text
    assert "secret internal detail" not in str(error.trailing_metadata())


async def test_a_handler_abort_is_left_as_it_is(bare: Probe) -> None:
    error = await bare.refusal("Aborts")
    assert (error.code(), error.details()) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "closed by the handler",
    )
    assert errors.STATUS_DETAILS_KEY not in _trailers(error.trailing_metadata())


async def test_an_unimplemented_method_says_it_is_not_available_yet(bare: Probe) -> None:
    error = await bare.refusal("Later")
    assert (error.code(), error.details()) == (
        grpc.StatusCode.UNIMPLEMENTED,
        "Later is not available yet",
    )
    assert error_info(error).reason == "not_implemented"


async def test_a_stream_failing_after_items_ends_with_internal_error(
    probe: Probe, tenant: Callable[..., Awaitable[Tenant]]
) -> None:
    caller = await tenant()
    call = probe.channel.unary_stream(f"/{SERVICE}/Feed")(b"fail", metadata=bearer(caller))
    received = []
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        async for item in call:
            received.append(item)
    assert received == [f"{caller.workspace_id}:{n}".encode() for n in range(3)]
    assert (raised.value.code(), raised.value.details()) == (
        grpc.StatusCode.INTERNAL,
        "internal error",
    )
    assert error_info(raised.value).reason == "internal"


async def test_an_unknown_method_stays_unimplemented(bare: Probe) -> None:
    error = await bare.refusal("NoSuchMethod")
    assert error.code() == grpc.StatusCode.UNIMPLEMENTED
    assert errors.STATUS_DETAILS_KEY not in _trailers(error.trailing_metadata())


# AuthInterceptor


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Basic dXNlcjpwYXNz", "Bearer", "Bearer   ", "lp_no_scheme"],
    ids=["absent", "empty", "basic", "no token", "blank token", "no scheme"],
)
async def test_a_missing_or_malformed_bearer_is_unauthenticated(
    probe: Probe, authorization: str | None
) -> None:
    metadata = () if authorization is None else (("authorization", authorization),)
    error = await probe.refusal("WhoAmI", metadata=metadata)
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "missing bearer token" in error.details()
    assert error_info(error).reason == "unauthorized"


async def test_an_unknown_token_is_unauthenticated(probe: Probe) -> None:
    error = await probe.refusal("WhoAmI", metadata=(("authorization", "Bearer lp_unknown"),))
    assert (error.code(), error.details()) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "invalid or expired token",
    )


@pytest.mark.parametrize("workspace", ["abc", "-1", "1.5"])
async def test_a_malformed_workspace_header_is_invalid_argument(
    probe: Probe, tenant: Callable[..., Awaitable[Tenant]], workspace: str
) -> None:
    error = await probe.refusal("WhoAmI", metadata=bearer(await tenant(), x_workspace_id=workspace))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    info = error_info(error)
    assert (info.reason, dict(info.metadata)) == ("invalid_argument", {"field": "x-workspace-id"})


async def test_the_workspace_header_selects_the_workspace_or_is_refused(
    probe: Probe, tenant: Callable[..., Awaitable[Tenant]]
) -> None:
    caller, other = await tenant(), await tenant()
    own = bearer(caller, x_workspace_id=str(caller.workspace_id))
    response, _ = await probe.call("WhoAmI", metadata=own)
    assert response.split()[0] == str(caller.workspace_id).encode()
    error = await probe.refusal(
        "WhoAmI", metadata=bearer(caller, x_workspace_id=str(other.workspace_id))
    )
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error_info(error).reason == "forbidden"


async def test_success_binds_the_caller_and_names_the_workspace_in_a_trailer(
    probe: Probe, tenant: Callable[..., Awaitable[Tenant]]
) -> None:
    caller = await tenant()
    response, trailers = await probe.call("WhoAmI", metadata=bearer(caller, x_request_id="req-1"))
    assert response == f"{caller.workspace_id} req-1".encode()
    assert trailers[WORKSPACE_TRAILER] == str(caller.workspace_id)
    assert trailers["x-handler"] == "kept"  # the handler's own trailers stay


async def test_streams_are_authenticated_and_see_the_caller(
    probe: Probe, tenant: Callable[..., Awaitable[Tenant]]
) -> None:
    caller = await tenant()
    items = await probe.stream(metadata=bearer(caller))
    assert items == [f"{caller.workspace_id}:{n}".encode() for n in range(3)]
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await probe.stream()
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_a_missing_scope_is_refused_and_reported(
    probe: Probe, tenant: Callable[..., Awaitable[Tenant]]
) -> None:
    caller = await tenant(scopes=("events:write",))
    error = await probe.refusal("WhoAmI", metadata=bearer(caller, x_request_id="req-scope"))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "analytics:read" in error.details()
    assert error_info(error).reason == "insufficient_scope"
    assert WORKSPACE_TRAILER not in _trailers(error.trailing_metadata())
    assert (caller.workspace_id, f"/{SERVICE}/WhoAmI", "insufficient_scope", "req-scope") in (
        probe.denials.seen
    )


async def test_a_feature_outside_the_plan_is_refused_and_reported(
    probe: Probe, tenant: Callable[..., Awaitable[Tenant]]
) -> None:
    free, business = await tenant(plan="free"), await tenant(plan="business")
    error = await probe.refusal("Deep", metadata=bearer(free))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "deep_links" in error.details() and "free" in error.details()
    assert error_info(error).reason == "feature_not_enabled"
    assert (free.workspace_id, f"/{SERVICE}/Deep", "feature_not_enabled", "") in (
        probe.denials.seen
    )
    response, _ = await probe.call("Deep", metadata=bearer(business))
    assert response.split()[0] == str(business.workspace_id).encode()


async def test_public_rpcs_and_rpcs_without_a_policy_pass_through(probe: Probe) -> None:
    response, trailers = await probe.call("Public", b"hello")
    assert response == b"public hello"
    assert WORKSPACE_TRAILER not in trailers
    # No policy (like health and reflection): not authenticated here.
    error = await probe.refusal("Fail", b"api")
    assert error.code() == grpc.StatusCode.NOT_FOUND


async def test_the_rate_limit_is_spent_per_call_and_refuses_with_its_headers(
    pg: asyncpg.Pool, settings: Settings, tenant: Callable[..., Awaitable[Tenant]]
) -> None:
    caller = await tenant(plan="free")  # 60 requests a minute
    redis = Redis.from_url(settings.redis_url)
    limiter = RateLimiter(redis, prefix=f"lptest{os.getpid()}:interceptors", timeout_seconds=1.0)
    auth = AuthInterceptor(TokenResolver(pg, ttl=60.0), POLICIES, limiter=limiter)
    try:
        async with serving(pg, ErrorInterceptor(), auth) as channel:
            limited = Probe(channel, Denials())
            _, first = await limited.call("WhoAmI", metadata=bearer(caller))
            assert (first["x-ratelimit-limit"], first["x-ratelimit-remaining"]) == ("60", "59")
            assert first[WORKSPACE_TRAILER] == str(caller.workspace_id)
            error = await _first_refusal(limited, bearer(caller), calls=70)
    finally:
        await redis.aclose()
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error_info(error).reason == "rate_limited"
    trailers = _trailers(error.trailing_metadata())
    assert trailers["x-ratelimit-limit"] == "60" and int(trailers["retry-after"]) >= 1


async def _first_refusal(
    probe: Probe, metadata: tuple[tuple[str, str], ...], calls: int
) -> grpc.aio.AioRpcError:
    """The first error of up to `calls` WhoAmI calls."""
    for _ in range(calls):
        try:
            await probe.call("WhoAmI", metadata=metadata)
        except grpc.aio.AioRpcError as error:
            return error
    raise AssertionError(f"{calls} calls were all served")
