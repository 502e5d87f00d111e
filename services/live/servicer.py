"""LiveService: accepts clicks for links of the caller's workspace and writes them to ClickHouse."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc

from services import errors, pb
from services.auth import principal
from services.ids import EventIds
from services.live.enrich import CLICK_COLUMNS, click_row
from services.server.deps import Deps


class LiveServicer(pb.live_pb2_grpc.LiveServiceServicer):
    """Ingestion (batch and single click); feeds come in a later release."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.ids = EventIds(deps.settings.node_id)

    async def _destinations(self, workspace_id: int, link_ids: set[int]) -> dict[int, str]:
        rows = await self.deps.pg.fetch(
            "SELECT id, destination_url FROM links"
            " WHERE workspace_id = $1 AND id = ANY($2::bigint[])",
            workspace_id,
            list(link_ids),
        )
        return {r["id"]: r["destination_url"] for r in rows}

    async def accept(
        self, events: list[pb.live_pb2.ClickEvent], batch: bool
    ) -> pb.live_pb2.IngestResponse:
        """Validate every event (all or nothing), enrich and insert them; returns their ids."""
        limit = self.deps.settings.max_ingest_batch
        if not events:
            raise errors.invalid_argument("events", "events must hold at least one click")
        if len(events) > limit:
            raise errors.invalid_argument("events", f"at most {limit} events per batch")
        workspace_id = principal.current().workspace_id
        destinations = await self._destinations(workspace_id, {e.link_id for e in events})
        now = datetime.now(UTC)
        rows = []
        for i, event in enumerate(events):
            prefix = f"events[{i}]." if batch else ""
            if event.link_id <= 0:
                raise errors.invalid_argument(f"{prefix}link_id", f"{prefix}link_id is required")
            if event.link_id not in destinations:
                raise errors.ApiError(
                    grpc.StatusCode.NOT_FOUND,
                    "not_found",
                    f"link {event.link_id} not found in this workspace",
                    f"{prefix}link_id",
                )
            event_id = event.event_id or self.ids.next()
            rows.append(
                click_row(
                    prefix,
                    event,
                    workspace_id=workspace_id,
                    destination_url=destinations[event.link_id],
                    event_id=event_id,
                    now=now,
                )
            )
        await self.deps.ch.insert("clicks", CLICK_COLUMNS, rows)
        return pb.live_pb2.IngestResponse(accepted=len(rows), event_ids=[r[0] for r in rows])

    async def Ingest(self, request, context):  # noqa: N802, ANN001
        return await self.accept(list(request.events), batch=True)

    async def TrackClick(self, request, context):  # noqa: N802, ANN001
        return await self.accept([request], batch=False)


def register(server: grpc.aio.Server, deps: Deps) -> str:
    """Add the servicer to server; returns the service's full name."""
    pb.live_pb2_grpc.add_LiveServiceServicer_to_server(LiveServicer(deps), server)
    return "linkpulse.v1.LiveService"
