"""ExportService: exports (inline or as jobs), their downloads, and batch queries."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any

import grpc
import orjson
from arq import ArqRedis
from google.api import httpbody_pb2
from redis.asyncio import ConnectionPool

from services import cursor, errors, field_rules, protos
from services.auditlog.recorder import record
from services.auth import principal as principals
from services.auth.signing import Signer, signer
from services.contract.router import ReadRouter
from services.export import batch, download_links, jobs, runner, views
from services.export.datasets import ExportSpec, aggregated_rows, resolve_spec
from services.export.formats import MEDIA_TYPES
from services.export.sql import compile_export, count_export
from services.export.storage import ExportStorage
from services.grpc_server.trailers import HTTP_STATUS_TRAILER
from services.stores import clickhouse_http
from services.stores.deps import Deps
from services.telemetry import tracing

DEFAULT_PAGE = 20
MAX_PAGE = field_rules.maximum(protos.export_pb2.ListExportsRequest.DESCRIPTOR, "limit")
DOWNLOAD_CHUNK_BYTES = 1 << 20
_BATCH_POLL_SECONDS = 0.05


def _accepted(context: grpc.aio.ServicerContext) -> None:
    context.set_trailing_metadata(((HTTP_STATUS_TRAILER, "202"),))


class ExportServicer(protos.export_pb2_grpc.ExportServiceServicer):
    """Exports and batch queries; the work itself runs on the arq workers."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.storage = ExportStorage(deps.settings.export_path)
        self.signer: Signer = signer(deps.settings)
        self.router: ReadRouter = batch.router()
        self._arq: ArqRedis | None = None

    async def _queue(self) -> ArqRedis:
        """The deployment's arq queue, over the service's own Redis connections unless the queue
        has its own Redis (ARQ_REDIS_URL; always with a Redis Cluster)."""
        if self._arq is None:
            settings = self.deps.settings
            own = settings.arq_url != settings.redis_url or settings.redis_cluster
            pool = (
                ConnectionPool.from_url(settings.arq_url)
                if own
                else self.deps.redis.connection_pool
            )
            self._arq = ArqRedis(pool, default_queue_name=settings.queue_name)
        return self._arq

    def _job(self, row: Any) -> protos.export_pb2.ExportJob:
        return views.export_job(row, self.signer, self.deps.settings.export_link_ttl_seconds)

    async def _start_export(self, spec: ExportSpec, estimate: int) -> Any:
        """Create (or find the identical in-flight) job and hand it to the workers."""
        caller = principals.current()
        row, created = await jobs.create(
            self.deps.pg,
            workspace_id=caller.workspace_id,
            actor=caller.actor,
            spec=spec,
            estimate=estimate,
        )
        if created:
            await record(
                self.deps.pg,
                workspace_id=caller.workspace_id,
                actor=caller.actor,
                action="export.created",
                target=f"export:{row['id']}",
            )
        queue = await self._queue()
        # The arq job id is the export's: a second enqueue of the same job is a no-op.
        await queue.enqueue_job(
            "run_export",
            row["id"],
            trace_context=tracing.carrier(),
            _job_id=jobs.arq_job_id("export", row["id"]),
        )
        return row

    async def _estimate(self, spec: ExportSpec) -> int:
        if not spec.raw:
            return 0
        return await count_export(self.deps.ch, spec.export_query())

    async def Export(self, request, context):  # noqa: N802, ANN001
        caller = principals.current()
        spec = await resolve_spec(self.deps, caller, request)
        estimate = await self._estimate(spec)
        if estimate > self.deps.settings.export_inline_rows:
            row = await self._start_export(spec, estimate)
            _accepted(context)
            return httpbody_pb2.HttpBody(
                content_type="application/json", data=views.export_job_json(self._job(row))
            )
        data = await runner.inline(self.deps.ch, self.deps.settings, spec)
        await record(
            self.deps.pg,
            workspace_id=caller.workspace_id,
            actor=caller.actor,
            action="export.created",
            target=f"inline:{spec.dataset}.{spec.fmt}",
        )
        return httpbody_pb2.HttpBody(content_type=MEDIA_TYPES[spec.fmt], data=data)

    async def CreateExport(self, request, context):  # noqa: N802, ANN001
        spec = await resolve_spec(self.deps, principals.current(), request)
        row = await self._start_export(spec, await self._estimate(spec))
        _accepted(context)
        return self._job(row)

    async def GetExport(self, request, context):  # noqa: N802, ANN001
        workspace = principals.current().workspace_id
        return self._job(await jobs.get(self.deps.pg, workspace, request.id))

    async def ListExports(self, request, context):  # noqa: N802, ANN001
        limit = request.limit if request.HasField("limit") else DEFAULT_PAGE
        if not 1 <= limit <= MAX_PAGE:
            raise errors.invalid_argument("limit", f"limit must be between 1 and {MAX_PAGE}")
        position = cursor.decode(request.cursor)
        after = None
        if position is not None:
            if len(position) != 2 or not all(isinstance(v, str) for v in position):
                raise errors.invalid_argument("cursor", "cursor is not a cursor this API returned")
            after = (datetime.fromisoformat(str(position[0])), str(position[1]))
        workspace = principals.current().workspace_id
        rows = await jobs.page(self.deps.pg, workspace, limit + 1, after)
        shown = rows[:limit]
        response = protos.export_pb2.ListExportsResponse(jobs=[self._job(r) for r in shown])
        if len(rows) > limit:
            last = shown[-1]
            response.next_cursor = cursor.encode([last["created_at"].isoformat(), last["id"]])
        return response

    async def CancelExport(self, request, context):  # noqa: N802, ANN001
        workspace = principals.current().workspace_id
        return self._job(await jobs.cancel(self.deps.pg, workspace, request.id))

    async def DownloadExport(self, request, context):  # noqa: N802, ANN001
        workspace = download_links.verify(self.signer, request.id, request.token)
        row = await jobs.get(self.deps.pg, workspace, request.id)
        path = self.storage.path(workspace, row["id"], row["format"])
        if row["status"] != "succeeded" or not row["file_name"] or not path.exists():
            raise errors.not_found(f"the file of export {request.id}")
        handle = path.open("rb")  # opened now: a purge after this point cannot cut the stream
        try:
            await record(
                self.deps.pg,
                workspace_id=workspace,
                actor=row["actor"],
                action="export.downloaded",
                target=f"export:{row['id']}",
            )
            name = path.name
            await context.send_initial_metadata(
                (("content-disposition", f'attachment; filename="{name}"'),)
            )
            first = True
            while chunk := await asyncio.to_thread(handle.read, DOWNLOAD_CHUNK_BYTES):
                body = httpbody_pb2.HttpBody(data=chunk)
                if first:
                    body.content_type = "application/gzip"
                    first = False
                yield body
            if first:
                yield httpbody_pb2.HttpBody(content_type="application/gzip")
        finally:
            handle.close()

    async def StreamExport(self, request, context):  # noqa: N802, ANN001
        spec = await resolve_spec(self.deps, principals.current(), request)
        if not spec.raw:
            for row in await aggregated_rows(self.deps.ch, spec):
                yield protos.export_pb2.ExportRow(values=views.struct(row))
            return
        async for row in self._raw_rows(spec):
            yield protos.export_pb2.ExportRow(values=views.struct(row))

    async def _raw_rows(self, spec: ExportSpec) -> AsyncIterator[dict[str, Any]]:
        """The rows of a raw dataset as dicts, read from ClickHouse in blocks."""
        ndjson = ExportSpec.from_json({**spec.to_json(), "fmt": "ndjson"})
        sql, params = compile_export(ndjson.export_query())
        settings, ch = self.deps.settings, self.deps.ch
        opened = clickhouse_http.stream(
            ch.target, clickhouse_http.endpoints(ch.target, settings), sql, params
        )
        body: Iterator[bytes] = await asyncio.to_thread(opened.__enter__)
        try:
            rest = b""
            while chunk := await asyncio.to_thread(next, body, b""):
                lines = (rest + chunk).split(b"\n")
                rest = lines.pop()
                for line in lines:
                    yield orjson.loads(line)
            if rest.strip():
                yield orjson.loads(rest)
        finally:
            await asyncio.to_thread(opened.__exit__, None, None, None)

    async def Batch(self, request, context):  # noqa: N802, ANN001
        caller = principals.current()
        items = batch.validate(request, self.router, self.deps.settings.batch_max_items)
        row, created = await batch.create(self.deps.pg, caller, items)
        if created:
            await record(
                self.deps.pg,
                workspace_id=caller.workspace_id,
                actor=caller.actor,
                action="batch.created",
                target=f"batch:{row['id']}",
            )
        queue = await self._queue()
        await queue.enqueue_job(
            "run_batch",
            row["id"],
            trace_context=tracing.carrier(),
            _job_id=jobs.arq_job_id("batch", row["id"]),
        )
        if request.wait:
            deadline = time.monotonic() + self.deps.settings.batch_wait_seconds
            while row["status"] in ("queued", "running") and time.monotonic() < deadline:
                await asyncio.sleep(_BATCH_POLL_SECONDS)
                row = await batch.get(self.deps.pg, caller.workspace_id, row["id"])
        if row["status"] in ("queued", "running"):
            _accepted(context)
        return views.batch_job(row)

    async def GetBatch(self, request, context):  # noqa: N802, ANN001
        return views.batch_job(
            await batch.get(self.deps.pg, principals.current().workspace_id, request.id)
        )


def register(server: grpc.aio.Server, deps: Deps) -> str:
    """Add the servicer to server; returns the service's full name."""
    protos.export_pb2_grpc.add_ExportServiceServicer_to_server(ExportServicer(deps), server)
    return "linkpulse.v1.ExportService"
