"""Without the compiled click path (not built, or turned off) every request takes accept_clicks."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import pytest

from services import protos
from services.live import compiled_clicks
from services.live.visitors import VisitorIds

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
REQUEST = protos.live_pb2.IngestRequest(
    events=[protos.live_pb2.ClickEvent(link_id=7, timestamp="2026-11-23T11:00:00Z")]
).SerializeToString()

WITHOUT_EXTENSION = """
import logging, sys
sys.modules["services.live._clickwire"] = None  # what importing it gives when it was not built
logging.basicConfig(format="%(levelname)s %(message)s")
from services.live import compiled_clicks
from services.live.visitors import VisitorIds
import services.live.servicer  # the live service starts without it
assert not compiled_clicks.enabled
assert compiled_clicks.scan_wire(REQUEST) is None
from services.live.visitors import VisitorIds
assert compiled_clicks.accept_click_wire(
    REQUEST, workspace_id=4, destinations={7: "https://example.com"}, new_ids=[1], now=NOW,
    visitors=VisitorIds(b"k" * 16),
) is None
"""


def test_without_the_extension_requests_are_left_to_python_with_one_warning() -> None:
    setup = f"import datetime\nREQUEST = {REQUEST!r}\nNOW = {NOW!r}\n"
    done = subprocess.run(
        [sys.executable, "-c", setup + WITHOUT_EXTENSION],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    warning = "WARNING compiled click path unavailable, using Python"
    assert done.stderr.count(warning) == 1, done.stderr


def test_turned_off_the_compiled_path_takes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compiled_clicks, "enabled", False)
    assert compiled_clicks.scan_wire(REQUEST) is None
    found = compiled_clicks.accept_click_wire(
        REQUEST,
        workspace_id=4,
        destinations={7: "https://example.com"},
        new_ids=[1],
        now=NOW,
        visitors=VisitorIds(b"k" * 16),
    )
    assert found is None
