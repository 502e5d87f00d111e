"""Export file formats: media types, names, and the writer of rows computed in Python."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from services.export.sql import FORMULA_STARTS

MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "ndjson": "application/x-ndjson"}


def file_name(job_id: str, fmt: str) -> str:
    """The stored (gzip-compressed) file name of a job."""
    return f"{job_id}.{fmt}.gz"


def neutralise(value: Any) -> Any:
    """A CSV cell a spreadsheet will not run: formula-like text gets a leading apostrophe."""
    if isinstance(value, str):
        if value.startswith(FORMULA_STARTS):
            value = "'" + value
        return value.replace("\r", " ").replace("\n", " ")
    return value


def render(rows: Iterable[dict[str, Any]], columns: Sequence[str], fmt: str) -> bytes:
    """rows as a whole CSV (with a header line) or NDJSON document."""
    if fmt == "ndjson":
        return b"".join(orjson.dumps(row) + b"\n" for row in rows)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([neutralise(row[c]) for c in columns] for row in rows)
    return out.getvalue().encode()
