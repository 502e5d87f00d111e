"""Log lines: JSON objects with the required keys and the request's fields, readable text when
asked, and credentials masked whatever logs them."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator
from dataclasses import replace

import pytest

from services.config import Settings
from services.telemetry import log_context, logs, redaction

KEY = "lp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8S9t0U1v"
LIVE = "lpl_eyJ3cyI6MSwiZXhwIjoxNzAwMDAwMDAwfQ.q1w2e3r4t5y6u7i8o9p0"
EMBED = "eyJ3cyI6MSwiZXhwIjoxNzAwMDAwMDAwfQ.q1w2e3r4t5y6u7i8o9p0"


def record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("linkpulse.test", logging.INFO, __file__, 1, message, args, None)
    for key, value in extra.items():
        setattr(made, key, value)
    return made


def test_json_lines_have_the_keys_and_the_bound_request_fields() -> None:
    formatter = logs.JsonLines("query")
    with log_context.bound(request_id="r-1", route="/linkpulse.v1.QueryService/Overview"):
        log_context.annotate(workspace=7)
        line = formatter.format(record("served %s", "it", status=200, duration_ms=1.5))
    data = json.loads(line)
    assert [k for k in data][:5] == list(logs.BASE_KEYS)
    assert data["process"] == "query" and data["level"] == "INFO"
    assert data["logger"] == "linkpulse.test" and data["message"] == "served it"
    assert data["request_id"] == "r-1" and data["workspace"] == 7
    assert data["route"] == "/linkpulse.v1.QueryService/Overview"
    assert data["status"] == 200 and data["duration_ms"] == 1.5
    assert "trace_id" not in data  # no span: tracing is off in this process
    # Outside the request, none of its fields.
    assert "request_id" not in json.loads(formatter.format(record("later")))


def test_exceptions_stay_on_one_line() -> None:
    try:
        raise ValueError(f"bad key {KEY}")
    except ValueError:
        failed = record("failed")
        failed.exc_info = sys.exc_info()
    line = logs.JsonLines("worker").format(failed)
    assert "\n" not in line and KEY not in line
    assert "ValueError" in json.loads(line)["exc_info"]


@pytest.mark.parametrize(
    "text",
    [
        f"Authorization: Bearer {KEY}",
        f"metadata (('authorization', 'Bearer {LIVE}'),)",
        f"key {KEY} refused",
        f"GET /api/analytics/live/ws?token={LIVE}&kind=click",
        f"GET /embed?token={EMBED}",
        f"embed token {EMBED} expired",
        "connecting to postgresql://lp:S3cret-pass@db:5432/linkpulse",
        "redis://:S3cret-pass@redis:6379/0 and clickhouse://default:S3cret-pass@ch:9000/db",
    ],
)
def test_credentials_are_masked(text: str) -> None:
    masked = redaction.redact(text)
    for secret in (KEY, LIVE, EMBED, "S3cret-pass", LIVE.removeprefix("lpl_")):
        assert secret not in masked, masked
    assert redaction.MASK in masked


def test_ordinary_text_is_left_alone() -> None:
    for text in (
        "GET /api/analytics/live?mytoken=1",
        "help_text lp:ingest:stream clickhouse://ch:9000/db",
        "/api/analytics/workspace/overview?start=2026-01-01",
        "export exp_8ac6b7373f7465b97966: 0 rows",
    ):
        assert redaction.redact(text) == text


def test_configured_secrets_are_masked_verbatim() -> None:
    settings = replace(
        Settings(),
        signing_key="signing-key-0123456789",
        database_url="postgresql://lp:p%40ss-word@db/linkpulse",
    )
    found = logs.secrets_of(settings)
    assert "signing-key-0123456789" in found and "p@ss-word" in found
    line = logs.JsonLines("audit", found).format(
        record("key %s and %s", "signing-key-0123456789", "p@ss-word")
    )
    assert "signing-key" not in line and "p@ss-word" not in line


def test_text_lines_are_readable() -> None:
    settings = replace(Settings(), log_format="text")
    formatter = logs.formatter("gateway", settings)
    with log_context.bound(request_id="r-2"):
        line = formatter.format(record("GET /x?token=abc 200", route="/x", status=200))
    assert " INFO gateway linkpulse.test: GET /x?token=… 200 [" in line
    assert "request_id=r-2" in line and "route=/x" in line and "status=200" in line


@pytest.fixture
def restored_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level, hook = list(root.handlers), root.level, sys.excepthook
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    sys.excepthook = hook


def test_configure_sends_every_logger_through_one_handler(restored_logging, monkeypatch) -> None:
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    logs.configure("gateway", replace(Settings(), log_format="json", log_level="DEBUG"))
    logging.getLogger("uvicorn.error").info("Started server process [%d]", 1)
    logging.getLogger("arq.worker").debug("job %s", "x")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(r["logger"], r["process"]) for r in lines] == [
        ("uvicorn.error", "gateway"),
        ("arq.worker", "gateway"),
    ]
    assert logging.getLogger().level == logging.DEBUG
