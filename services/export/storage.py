"""Export files on disk: one directory per workspace, written under a temporary name, renamed."""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from isal import isal_zlib

from services.export.formats import file_name

# gzip by ISA-L at its level 1: about a fifth of the CSV's size, at about 1 GB/s (five times
# zlib's fastest level, which would make compression the export's bottleneck).
GZIP_LEVEL = 1
READ_CHUNK_BYTES = 1 << 20
_DONE = object()  # end of the chunks, for the compressing thread


class Cancelled(Exception):
    """The export was cancelled while its file was being written."""


@dataclass
class Progress:
    """Rows and bytes written so far, updated by the writing thread."""

    rows: int = 0
    bytes: int = 0


class ExportStorage:
    """Where export files live: `<root>/<workspace id>/<job id>.<format>.gz`."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, workspace_id: int, job_id: str, fmt: str) -> Path:
        """The final path of a job's file."""
        return self.root / str(int(workspace_id)) / file_name(job_id, fmt)

    def temporary(self, workspace_id: int, job_id: str, attempt: int) -> Path:
        """Where one attempt writes before the rename; never served."""
        return self.root / str(int(workspace_id)) / f".{job_id}.{attempt}.tmp"

    def discard_attempts(self, workspace_id: int, job_id: str) -> None:
        """Remove the temporary files of every earlier attempt of a job."""
        folder = self.root / str(int(workspace_id))
        for stale in folder.glob(f".{job_id}.*.tmp"):
            stale.unlink(missing_ok=True)

    def delete(self, workspace_id: int, job_id: str, fmt: str) -> None:
        """Remove a job's file (and temporaries), if any."""
        self.path(workspace_id, job_id, fmt).unlink(missing_ok=True)
        self.discard_attempts(workspace_id, job_id)

    def read(self, path: Path) -> Iterator[bytes]:
        """A stored file in chunks."""
        with path.open("rb") as source:
            while chunk := source.read(READ_CHUNK_BYTES):
                yield chunk


def _finish(tmp: Path, final: Path) -> int:
    """fsync and rename tmp to final; returns the file's size."""
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, final)
    return final.stat().st_size


def write_bytes(data: bytes, tmp: Path, final: Path) -> int:
    """Compress a small document into final (through tmp); returns the file's size."""
    tmp.parent.mkdir(parents=True, exist_ok=True)
    compressor = isal_zlib.compressobj(GZIP_LEVEL, isal_zlib.DEFLATED, 31)
    tmp.write_bytes(compressor.compress(data) + compressor.flush())
    return _finish(tmp, final)


def write_stream(
    chunks: Iterator[bytes],
    tmp: Path,
    final: Path,
    header_lines: int,
    progress: Progress,
    cancelled: threading.Event,
    pause_seconds: float = 0.0,
) -> int:
    """Compress streamed text lines into final (through tmp), counting rows; blocking.

    Rows are lines (less header_lines). A second thread compresses and writes while this one
    reads, so reading from ClickHouse and compressing overlap; at most a few chunks are held.
    Raises Cancelled (removing tmp) once cancelled is set.
    """
    tmp.parent.mkdir(parents=True, exist_ok=True)
    pending: queue.Queue[bytes | object] = queue.Queue(maxsize=4)
    failure: list[BaseException] = []

    def compress() -> None:
        compressor = isal_zlib.compressobj(GZIP_LEVEL, isal_zlib.DEFLATED, 31)
        try:
            with tmp.open("wb") as out:
                while (chunk := pending.get()) is not _DONE:
                    assert isinstance(chunk, bytes)
                    out.write(compressor.compress(chunk))
                out.write(compressor.flush())
        except BaseException as exc:  # reported by the reading thread
            failure.append(exc)
            while pending.get() is not _DONE:  # keep draining so the reader never blocks
                pass

    writer = threading.Thread(target=compress, name="export-gzip", daemon=True)
    writer.start()
    lines = 0
    try:
        for chunk in chunks:
            if cancelled.is_set():
                raise Cancelled()
            lines += chunk.count(b"\n")
            pending.put(chunk)
            progress.rows = max(lines - header_lines, 0)
            progress.bytes += len(chunk)
            if pause_seconds:
                time.sleep(pause_seconds)
    except BaseException:
        pending.put(_DONE)
        writer.join()
        tmp.unlink(missing_ok=True)
        raise
    pending.put(_DONE)
    writer.join()
    if failure:
        tmp.unlink(missing_ok=True)
        raise failure[0]
    progress.rows = max(lines - header_lines, 0)
    return _finish(tmp, final)
