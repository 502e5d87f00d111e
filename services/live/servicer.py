"""LiveService: validates clicks, leads and sales of the caller's workspace and enqueues them.

Accepted events go to the durable ingestion stream (services.live.stream); the flusher
(workers.flusher) writes them to ClickHouse. A request succeeds only once its events are
in the stream; if Redis cannot take them it fails with UNAVAILABLE and none of them was taken.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta

import grpc
from google.protobuf.message import DecodeError

from services import errors, protos
from services.auth import live_tokens, principal, ratelimit, signing
from services.ids import IdSource
from services.live import durability, feed, leads_and_sales, stats
from services.live.accepted import Accepted, accepted_one
from services.live.attribution import Attribution, click_cache_value
from services.live.clients import client_info
from services.live.compiled_clicks import accept_click_wire, scan_wire
from services.live.enrich import accept_clicks
from services.live.feed.requests import resolve_filters
from services.live.ingest_metrics import (
    counts_rejected,
    ingest_request_events,
    rejected,
    track_clicks_events,
)
from services.live.link_destinations import LinkDirectory
from services.live.stream import EventStream
from services.live.visitors import VisitorIds, visitor_key
from services.stores import node_lease
from services.stores.deps import Deps
from services.telemetry import measure


class LiveServicer(protos.live_pb2_grpc.LiveServiceServicer):
    """Ingestion: batch, client-streaming and single clicks, leads and sales."""

    def __init__(self, deps: Deps, ids: IdSource) -> None:
        self.deps = deps
        self.ids = ids
        self.stream = EventStream(deps.redis, deps.settings)
        self.links = LinkDirectory(deps.pg, deps.settings.auth_cache_seconds)
        self.signer = signing.signer(deps.settings)
        self.visitors = VisitorIds(visitor_key(deps.settings))
        client_info("Mozilla/5.0")  # loads the parser's rules now, not on the first click
        # One shared stream reader per workspace for every subscriber of this process.
        self.feeds = feed.FeedHub(
            deps.redis,
            prefix=deps.settings.live_key_prefix,
            partitions=deps.settings.ingest_partitions,
        )
        self.attribution = Attribution(
            deps.redis, deps.ch, self.stream.keys, deps.settings.click_cache_seconds
        )
        # TrackClicks spends one request per click: the interceptor the first, this the rest.
        self.limiter = ratelimit.RateLimiter(
            deps.redis,
            prefix=deps.settings.ingest_key_prefix,
            partitions=deps.settings.ingest_partitions,
        )

    async def _clicks(
        self, workspace_id: int, events: list[protos.live_pb2.ClickEvent], offset: int | None = 0
    ) -> Accepted:
        """Validate every click (all or nothing) and build what is enqueued."""
        destinations = await self.links.destinations(workspace_id, {e.link_id for e in events})
        new_ids = iter(self.ids.take(sum(1 for e in events if not e.event_id)))
        return accept_clicks(
            events,
            workspace_id=workspace_id,
            destinations=destinations,
            new_ids=new_ids,
            now=datetime.now(UTC),
            visitors=self.visitors,
            offset=offset,
        )

    async def _enqueue(self, workspace_id: int, events: Accepted) -> int:
        """Append events to the stream; returns how many were duplicates."""
        appended = await self.stream.enqueue(workspace_id, events)
        return appended.count(False)

    def _check_size(self, count: int) -> None:
        limit = self.deps.settings.max_ingest_batch
        if not count:
            raise errors.invalid_argument("events", "events must hold at least one click")
        if count > limit:
            raise errors.invalid_argument("events", f"at most {limit} events per batch")

    async def accept(
        self, events: list[protos.live_pb2.ClickEvent], batch: bool
    ) -> protos.live_pb2.IngestResponse:
        """Validate every event (all or nothing), enrich and enqueue them; returns their ids."""
        self._check_size(len(events))
        workspace_id = principal.current().workspace_id
        accepted = await self._clicks(workspace_id, events, 0 if batch else None)
        return await self._respond(workspace_id, accepted)

    async def _respond(
        self, workspace_id: int, accepted: Accepted
    ) -> protos.live_pb2.IngestResponse:
        duplicates = await self._enqueue(workspace_id, accepted)
        return protos.live_pb2.IngestResponse(
            accepted=len(accepted), event_ids=accepted.event_ids, duplicates=duplicates
        )

    async def accept_wire(self, data: bytes) -> protos.live_pb2.IngestResponse:
        """accept() of an IngestRequest's bytes: the compiled path takes the request when it
        can, accept_clicks (which names what is wrong) when it cannot."""
        workspace_id = principal.current().workspace_id
        scanned = scan_wire(data)
        if scanned is not None:
            link_ids, count, fresh = scanned
            self._check_size(count)
            accepted = accept_click_wire(
                data,
                workspace_id=workspace_id,
                destinations=await self.links.destinations(workspace_id, link_ids),
                new_ids=self.ids.take(fresh),
                now=datetime.now(UTC),
                visitors=self.visitors,
            )
            if accepted is not None:
                return await self._respond(workspace_id, accepted)
        try:
            request = protos.live_pb2.IngestRequest.FromString(data)
        except DecodeError as exc:
            raise errors.invalid_argument("events", f"not an IngestRequest: {exc}") from exc
        return await self.accept(list(request.events), batch=True)

    @counts_rejected("click", ingest_request_events)
    async def Ingest(self, request, context):  # noqa: N802, ANN001
        return await self.accept_wire(request)  # bytes: see register()

    async def IngestStream(self, request_iterator, context):  # noqa: N802, ANN001
        # Enqueued in chunks of MAX_INGEST_BATCH as they arrive, so memory stays bounded. An
        # invalid event fails the call; the chunks before it stay accepted (the error says how
        # many), and resending with client event ids counts nothing twice.
        workspace_id = principal.current().workspace_id
        limit = self.deps.settings.max_ingest_batch
        chunk: list[protos.live_pb2.ClickEvent] = []
        ids: list[int] = []
        duplicates = 0

        async def flush() -> None:
            nonlocal duplicates
            try:
                accepted = await self._clicks(workspace_id, chunk, offset=len(ids))
                duplicates += await self._enqueue(workspace_id, accepted)
            except errors.ApiError as exc:
                rejected(exc, "click", len(chunk))
                if ids:
                    exc.message = f"{exc.message} ({len(ids)} earlier events were accepted)"
                raise
            ids.extend(accepted.event_ids)
            chunk.clear()

        events: AsyncIterator[protos.live_pb2.ClickEvent] = request_iterator
        async for event in events:
            chunk.append(event)
            if len(chunk) >= limit:
                await flush()
        if chunk:
            await flush()
        if not ids:
            raise errors.invalid_argument("events", "the stream held no click")
        return protos.live_pb2.IngestResponse(
            accepted=len(ids), event_ids=ids, duplicates=duplicates
        )

    @counts_rejected("click")
    async def TrackClick(self, request, context):  # noqa: N802, ANN001
        return await self.accept([request], batch=False)

    @counts_rejected("click", track_clicks_events)
    async def TrackClicks(self, request, context):  # noqa: N802, ANN001
        # bytes (see register()): the compiled path takes the whole call when every click is
        # plain; otherwise each click is judged alone and those refused are reported not taken.
        data: bytes = request
        try:
            events = list(protos.live_pb2.TrackClicksRequest.FromString(data).events)
        except DecodeError as exc:
            raise errors.invalid_argument("events", f"not a TrackClicksRequest: {exc}") from exc
        self._check_size(len(events))
        await self._spend_rest(context, len(events) - 1)
        workspace_id = principal.current().workspace_id
        link_ids = {e.link_id for e in events}
        destinations = await self.links.destinations(workspace_id, link_ids)
        new_ids = self.ids.take(sum(1 for e in events if not e.event_id))
        now = datetime.now(UTC)
        accepted = None
        if len(destinations) == len(link_ids):
            accepted = accept_click_wire(
                data, workspace_id=workspace_id, destinations=destinations, new_ids=new_ids,
                now=now, visitors=self.visitors,
            )  # fmt: skip
        taken = [True] * len(events)
        if accepted is None:
            accepted = Accepted("click")
            fresh = iter(new_ids)
            for at, event in enumerate(events):
                try:
                    accepted.extend(
                        accept_clicks(
                            [event], workspace_id=workspace_id, destinations=destinations,
                            new_ids=fresh, now=now, visitors=self.visitors, offset=None,
                        )
                    )  # fmt: skip
                except errors.ApiError:
                    taken[at] = False
            measure.rejected("click", taken.count(False))
        appended = await self.stream.enqueue(workspace_id, accepted) if len(accepted) else []
        outcomes = iter(zip(accepted.event_ids, appended, strict=True))
        clicks = []
        for was_taken in taken:
            if not was_taken:
                clicks.append(protos.live_pb2.TrackedClick(taken=False))
                continue
            event_id, fresh_one = next(outcomes)
            clicks.append(
                protos.live_pb2.TrackedClick(taken=True, event_id=event_id, duplicate=not fresh_one)
            )
        return protos.live_pb2.TrackClicksResponse(clicks=clicks)

    async def _spend_rest(self, context: grpc.aio.ServicerContext, count: int) -> None:
        """Spend count more requests of the caller's rate limit (all or none), its headers as
        trailers; RESOURCE_EXHAUSTED when the bucket cannot give them all."""
        if count <= 0:
            return
        metadata = {k: v for k, v in context.invocation_metadata() or () if isinstance(v, str)}
        trailers = await self.limiter.charge(principal.current(), metadata, count)
        if trailers:
            context.set_trailing_metadata(trailers)

    @counts_rejected("lead")
    async def TrackLead(self, request, context):  # noqa: N802, ANN001
        leads_and_sales.check_lead(request)
        workspace_id = principal.current().workspace_id
        click = await self.attribution.click(workspace_id, request.click_id, "click_id")
        event_id = request.event_id or self.ids.next()
        row = leads_and_sales.lead_row(
            request,
            workspace_id=workspace_id,
            event_id=event_id,
            click=click,
            now=datetime.now(UTC),
        )
        lead = accepted_one(
            "lead",
            row,
            claimed=bool(request.event_id),
            cache_field=row["customer_id"],
            cache_value=click_cache_value({**click, "event_id": click["click_id"]}),
        )
        duplicates = await self._enqueue(workspace_id, lead)
        return protos.live_pb2.IngestResponse(
            accepted=1, event_ids=[event_id], duplicates=duplicates
        )

    @counts_rejected("sale")
    async def TrackSale(self, request, context):  # noqa: N802, ANN001
        supported = set(await self.deps.fx.currencies())
        currency = leads_and_sales.check_sale(request, supported)
        workspace_id = principal.current().workspace_id
        if request.click_id:
            click = await self.attribution.click(workspace_id, request.click_id, "click_id")
        else:
            customer = request.customer_id.strip()
            click = await self.attribution.customer(workspace_id, customer, "customer_id")
        event_id = request.event_id or self.ids.next()
        row = leads_and_sales.sale_row(
            request,
            workspace_id=workspace_id,
            event_id=event_id,
            currency=currency,
            click=click,
            now=datetime.now(UTC),
        )
        sale = accepted_one("sale", row, claimed=bool(request.event_id))
        duplicates = await self._enqueue(workspace_id, sale)
        return protos.live_pb2.IngestResponse(
            accepted=1, event_ids=[event_id], duplicates=duplicates
        )

    async def ListLive(self, request, context):  # noqa: N802, ANN001
        workspace_id = principal.current().workspace_id
        return await feed.list_live(
            self.deps.redis,
            workspace_id,
            request,
            self.deps.pg,
            prefix=self.deps.settings.live_key_prefix,
            partitions=self.deps.settings.ingest_partitions,
        )

    async def Subscribe(self, request, context):  # noqa: N802, ANN001
        workspace_id = principal.current().workspace_id
        async for event in self.feeds.subscribe(workspace_id, request, self.deps.pg):
            yield event

    async def GetLiveStats(self, request, context):  # noqa: N802, ANN001
        workspace_id = principal.current().workspace_id
        # The stats are the workspace's; a link or campaign named is still checked (404).
        await resolve_filters(self.deps.pg, workspace_id, request)
        return await stats.live_stats(
            self.deps.redis,
            workspace_id,
            prefix=self.deps.settings.live_key_prefix,
            partitions=self.deps.settings.ingest_partitions,
        )

    async def CreateLiveToken(self, request, context):  # noqa: N802, ANN001
        seconds = live_tokens.lifetime(
            request.ttl_seconds if request.HasField("ttl_seconds") else None
        )
        token = live_tokens.mint(self.signer, principal.current(), seconds)
        expires = datetime.now(UTC) + timedelta(seconds=seconds)
        return protos.live_pb2.LiveToken(
            token=token,
            expires_at=expires.isoformat(timespec="seconds").replace("+00:00", "Z"),
            expires_in=seconds,
        )


# RPCs handed their request's bytes (read by the compiled click path), not a parsed message.
_BYTES_REQUESTS = ("Ingest", "TrackClicks")


class _WireIngest:
    """Stands in for the server while the generated code adds the service's handlers, so that
    the RPCs of _BYTES_REQUESTS are handed their request's bytes."""

    def __init__(self, server: grpc.aio.Server) -> None:
        self.server = server

    def add_generic_rpc_handlers(self, handlers: object) -> None:
        """Ignored: add_registered_method_handlers adds both kinds with the bytes handler."""

    def add_registered_method_handlers(
        self, service: str, handlers: dict[str, grpc.RpcMethodHandler]
    ) -> None:
        """Add the handlers to the server, those of _BYTES_REQUESTS without a deserializer."""
        handlers = {
            **handlers,
            **{
                name: grpc.unary_unary_rpc_method_handler(
                    handlers[name].unary_unary,
                    response_serializer=handlers[name].response_serializer,
                )
                for name in _BYTES_REQUESTS
            },
        }
        self.server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(service, handlers),)
        )
        self.server.add_registered_method_handlers(service, handlers)


async def hold(deps: Deps, held: AsyncExitStack) -> dict[str, object]:
    """The event-id node lease of this process, kept until held closes (raises
    NodeIdUnavailable when none can be leased)."""
    return {"ids": await held.enter_async_context(node_lease.leased_ids(deps.redis, deps.settings))}


def register(server: grpc.aio.Server, deps: Deps, ids: IdSource) -> str:
    """Add the servicer (minting event ids from ids) to server; returns the service's full
    name."""
    protos.live_pb2_grpc.add_LiveServiceServicer_to_server(
        LiveServicer(deps, ids), _WireIngest(server)
    )
    return "linkpulse.v1.LiveService"


async def on_start(deps: Deps) -> asyncio.Task[None] | None:
    """Before serving: refuse (or warn about) a Redis that could lose acknowledged events."""
    return await durability.check(deps.redis, deps.settings)
