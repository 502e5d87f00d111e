"""Export files appear under their final name only when complete."""

from __future__ import annotations

import gzip
import threading

import pytest

from services.export.storage import Cancelled, ExportStorage, Progress, write_stream


def test_a_complete_stream_is_renamed_with_its_rows_counted(tmp_path):
    storage = ExportStorage(tmp_path)
    tmp, final = storage.temporary(7, "exp_a", 1), storage.path(7, "exp_a", "csv")
    chunks = [b"id,name\n1,a\n2,", b"b\n3,c\n"]
    progress = Progress()
    size = write_stream(iter(chunks), tmp, final, 1, progress, threading.Event())
    assert progress.rows == 3 and size == final.stat().st_size
    assert gzip.decompress(final.read_bytes()) == b"".join(chunks)
    assert not tmp.exists() and final.name == "exp_a.csv.gz"


def test_a_cancelled_or_failed_stream_leaves_nothing(tmp_path):
    storage = ExportStorage(tmp_path)
    tmp, final = storage.temporary(7, "exp_b", 1), storage.path(7, "exp_b", "csv")
    cancelled = threading.Event()

    def chunks():
        yield b"a\n" * 1000
        cancelled.set()
        yield b"b\n"

    with pytest.raises(Cancelled):
        write_stream(chunks(), tmp, final, 0, Progress(), cancelled)
    assert not tmp.exists() and not final.exists()

    def broken():
        yield b"a\n"
        raise ConnectionError("ClickHouse went away")

    with pytest.raises(ConnectionError):
        write_stream(broken(), tmp, final, 0, Progress(), threading.Event())
    assert not tmp.exists() and not final.exists()


def test_earlier_attempts_are_discarded(tmp_path):
    storage = ExportStorage(tmp_path)
    old = storage.temporary(3, "exp_c", 1)
    old.parent.mkdir(parents=True)
    old.write_bytes(b"partial")
    storage.discard_attempts(3, "exp_c")
    assert not old.exists()
