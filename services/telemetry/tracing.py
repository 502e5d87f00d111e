"""OpenTelemetry traces: a TracerProvider exporting over OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT
is set, and nothing at all otherwise (the API's no-op tracer; no instrumentation installed).

W3C trace context (`traceparent`) crosses HTTP and gRPC in headers and metadata, and arq jobs in
a dict among the job's arguments (`carrier()` when queueing, `continued()` when running).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind

from services.config import Settings

TRACER_NAME = "linkpulse"
SERVICE_PREFIX = "linkpulse-"

# Whether this process installed a TracerProvider (set once, at start, by configure).
_installed: dict[str, bool] = {"on": False}
# What span() returns when tracing is off.
NO_SPAN: contextlib.AbstractContextManager[None] = contextlib.nullcontext()


def enabled() -> bool:
    """True when this process records and exports spans."""
    return _installed["on"]


def configure(component: str, settings: Settings) -> bool:
    """Install the process's TracerProvider (service.name linkpulse-<component>), its OTLP/HTTP
    exporter and the PostgreSQL and Redis instrumentation when an OTLP endpoint is configured;
    installs nothing and returns False otherwise."""
    if not settings.otel_exporter_otlp_endpoint:
        return False
    if _installed["on"]:
        return True
    # Imported here: a process without an endpoint never loads the SDK or the exporter.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(
        resource=Resource.create({SERVICE_NAME: f"{SERVICE_PREFIX}{component}"}),
        sampler=_sampler(),
    )
    # The exporter reads the endpoint (plus /v1/traces), headers and timeout from OTEL_* itself;
    # the processor its OTEL_BSP_* batching. The provider flushes them at exit.
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _instrument_stores()
    _installed["on"] = True
    return True


def _sampler() -> Any:
    """Every trace a request or a job starts or continues, but no trace of a lone store call
    (the worker's and flusher's polling of Redis would make one every few milliseconds)."""
    from opentelemetry.sdk.trace.sampling import (
        ALWAYS_ON,
        Decision,
        ParentBased,
        Sampler,
        SamplingResult,
    )

    class NoLoneClientCalls(Sampler):
        def should_sample(
            self,
            parent_context: Any,
            trace_id: int,
            name: str,
            kind: SpanKind | None = None,
            attributes: Any = None,
            links: Any = None,
            trace_state: Any = None,
        ) -> SamplingResult:
            if kind == SpanKind.CLIENT:
                return SamplingResult(Decision.DROP)
            return ALWAYS_ON.should_sample(
                parent_context, trace_id, name, kind, attributes, links, trace_state
            )

        def get_description(self) -> str:
            return "NoLoneClientCalls"

    return ParentBased(root=NoLoneClientCalls())


def _instrument_stores() -> None:
    """Spans for every asyncpg query and Redis command (statement shapes, never values)."""
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    # capture_parameters=False: the SQL text has $n placeholders; the bound values stay out.
    AsyncPGInstrumentor(capture_parameters=False).instrument()
    # The Redis instrumentation records `db.statement` with each argument replaced by `?`.
    RedisInstrumentor().instrument()


def tracer() -> trace.Tracer:
    """The tracer of linkpulse's own spans."""
    return trace.get_tracer(TRACER_NAME)


def client_interceptors() -> list[Any]:
    """grpc.aio client interceptors that carry the current trace in each call's metadata (none
    when tracing is off)."""
    if not enabled():
        return []
    from opentelemetry.instrumentation.grpc import aio_client_interceptors, filters

    return list(aio_client_interceptors(filter_=filters.negate(filters.health_check())))


def server_interceptors() -> list[Any]:
    """grpc.aio server interceptors that continue the caller's trace (none when tracing is off)."""
    if not enabled():
        return []
    from opentelemetry.instrumentation.grpc import aio_server_interceptor, filters

    return [aio_server_interceptor(filter_=filters.negate(filters.health_check()))]


def carrier() -> dict[str, str]:
    """The current trace context as W3C headers (`traceparent`, …); empty outside a trace."""
    found: dict[str, str] = {}
    if enabled():
        propagate.inject(found)
    return found


def span(
    name: str, kind: SpanKind = SpanKind.INTERNAL, attributes: Mapping[str, Any] | None = None
) -> contextlib.AbstractContextManager[Any]:
    """A child span of the current one for the with-block (a shared no-op when tracing is off)."""
    if not enabled():
        return NO_SPAN
    return tracer().start_as_current_span(name, kind=kind, attributes=dict(attributes or {}))


@contextlib.contextmanager
def continued(
    name: str,
    context: Mapping[str, str] | None,
    kind: SpanKind = SpanKind.CONSUMER,
    attributes: Mapping[str, Any] | None = None,
) -> Iterator[Any]:
    """A span for the with-block, child of the trace in context (a `carrier()` made elsewhere),
    or the root of a new trace when context holds none."""
    if not enabled():
        yield None
        return
    parent = propagate.extract(dict(context or {}))
    with tracer().start_as_current_span(
        name, context=parent, kind=kind, attributes=dict(attributes or {})
    ) as current:
        yield current


def current_ids() -> tuple[str, str]:
    """(trace id, span id) of the current span in hex; ("", "") outside a recorded trace."""
    found = trace.get_current_span().get_span_context()
    if not found.is_valid:
        return "", ""
    return format(found.trace_id, "032x"), format(found.span_id, "016x")
