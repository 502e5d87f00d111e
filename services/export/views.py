"""Export and batch jobs as API messages."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
from google.protobuf import struct_pb2

from services import protos
from services.auth.signing import Signer
from services.contract.jsonify import message_to_dict
from services.export import download_links
from services.export.datasets import RAW_DATASETS
from services.protos import export_pb2
from services.timerange import utc_iso


def export_job(
    row: asyncpg.Record, signer: Signer, link_ttl_seconds: float
) -> export_pb2.ExportJob:
    """An ExportJob message; a succeeded job with its file carries a fresh signed link."""
    # Only the raw datasets are counted up front; 0 for the others means "not known".
    counted = row["dataset"] in RAW_DATASETS
    estimated = int(row["rows_estimated"])
    written = int(row["rows_written"])
    progress: float | None = None
    if row["status"] == "succeeded":
        progress = 1.0
    elif counted:
        progress = min(written / estimated, 1.0) if estimated else 0.0
    job = export_pb2.ExportJob(
        id=row["id"],
        status=row["status"],
        dataset=row["dataset"],
        format=row["format"],
        columns=list(row["columns"]),
        rows_written=written,
        rows_estimated=estimated if counted else None,
        size_bytes=int(row["size_bytes"]),
        created_at=utc_iso(row["created_at"]),
        finished_at=utc_iso(row["finished_at"]),
        error=row["error"] or None,
        progress=None if progress is None else round(progress, 4),
    )
    if row["status"] == "succeeded" and row["file_name"]:
        job.expires_at = utc_iso(row["expires_at"])
        url, until = download_links.sign(signer, row["workspace_id"], row["id"], link_ttl_seconds)
        job.download_url = url
        job.download_expires_at = utc_iso(datetime.fromtimestamp(until, UTC))
    return job


def export_job_json(job: export_pb2.ExportJob) -> bytes:
    """The job in the standard success envelope (for the 202 answer of GET /export)."""
    return orjson.dumps({"success": True, "data": message_to_dict(job)})


def struct(value: dict[str, Any]) -> struct_pb2.Struct:
    """A JSON object as a protobuf Struct."""
    message = struct_pb2.Struct()
    message.update(value)
    return message


def batch_job(row: asyncpg.Record) -> protos.export_pb2.BatchJob:
    """A BatchJob message with its per-item results once it has run."""
    items = orjson.loads(row["items"]) if isinstance(row["items"], str) else row["items"]
    job = protos.export_pb2.BatchJob(
        id=row["id"],
        status=row["status"],
        created_at=utc_iso(row["created_at"]),
        finished_at=utc_iso(row["finished_at"]),
        items=len(items),
    )
    raw = row["results"]
    results = orjson.loads(raw) if isinstance(raw, str) else (raw or [])
    for result in results:
        item = job.results.add(id=result["id"], route=result["route"], ok=result["ok"])
        if result["ok"]:
            item.data.CopyFrom(struct(result["data"]))
        else:
            item.error.CopyFrom(protos.common_pb2.ErrorDetail(**result["error"]))
    return job
