"""Logging of every process: one JSON object per line (LOG_FORMAT=json, the default) or readable
text (LOG_FORMAT=text), with the request's id, trace, workspace, route, status and duration when
known, and credentials masked."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlparse

from pythonjsonlogger.json import JsonFormatter

from services.config import Settings
from services.telemetry import log_context, redaction, tracing

# The keys every line has, then those it has when known (in this order).
BASE_KEYS = ("time", "level", "process", "logger", "message")
CONTEXT_KEYS = (
    "request_id",
    "trace_id",
    "span_id",
    "workspace",
    "route",
    "method",
    "status",
    "duration_ms",
    "job",
)
# Loggers of libraries that configure handlers of their own: they go through ours instead.
# (uvicorn's access logger is left as the gateway set it: off, the gateway writes its own.)
_OWN_HANDLERS = ("uvicorn", "uvicorn.error", "arq", "arq.worker")
# Extras some libraries add that say nothing new (uvicorn's message with terminal colours).
_DROPPED = frozenset({"color_message"})
# A secret shorter than this is not masked verbatim (it would mask ordinary words).
_MIN_LITERAL = 6


def context_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The request fields of record: what its call passed in `extra`, else what is bound."""
    found: dict[str, Any] = {}
    bound = log_context.fields()
    trace_id, span_id = tracing.current_ids()
    implicit = {"trace_id": trace_id, "span_id": span_id}
    for key in CONTEXT_KEYS:
        value = getattr(record, key, None)
        if value is None:
            value = bound.get(key)
        if value is None or value == "":
            value = implicit.get(key)
        if value is not None and value != "":
            found[key] = value
    return found


class JsonLines(JsonFormatter):
    """One JSON object per record with BASE_KEYS, the known CONTEXT_KEYS and the record's other
    extras; the serialized line is scrubbed of credentials."""

    def __init__(self, component: str, secrets: tuple[str, ...] = ()) -> None:
        super().__init__(json_ensure_ascii=False)
        self.component = component
        self.secrets = secrets

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        """time, level, process, logger, message, then the request's fields and extras."""
        log_data["time"] = datetime.fromtimestamp(record.created, UTC).isoformat(
            timespec="milliseconds"
        )
        log_data["level"] = record.levelname
        log_data["process"] = self.component
        log_data["logger"] = record.name
        log_data["message"] = record.getMessage()
        log_data.update(context_fields(record))
        for key, value in message_dict.items():
            if key not in log_data:
                log_data[key] = value
        for key, value in record.__dict__.items():
            if key not in self._skip_fields and key not in log_data and key not in _DROPPED:
                log_data[key] = value

    def format(self, record: logging.LogRecord) -> str:
        """The record's line, credentials masked."""
        return redaction.redact(super().format(record), self.secrets)


class TextLines(logging.Formatter):
    """`time LEVEL process logger: message key=value…` for people reading a terminal."""

    def __init__(self, component: str, secrets: tuple[str, ...] = ()) -> None:
        super().__init__("%(asctime)s %(levelname)s " + component + " %(name)s: %(message)s")
        self.secrets = secrets

    def format(self, record: logging.LogRecord) -> str:
        """The record's line with its request fields appended, credentials masked."""
        line = super().format(record)
        fields = context_fields(record)
        if fields:
            extra = " ".join(f"{key}={value}" for key, value in fields.items())
            head, sep, rest = line.partition("\n")  # after the message, before a traceback
            line = f"{head} [{extra}]{sep}{rest}"
        return redaction.redact(line, self.secrets)


def secrets_of(settings: Settings) -> tuple[str, ...]:
    """Configured values no log line may show: signing keys and the stores' passwords."""
    found = [settings.signing_key, settings.visitor_id_key]
    for url in (settings.database_url, settings.redis_url, settings.clickhouse_url):
        try:
            password = urlparse(url).password
        except ValueError:
            password = None
        if password:
            found.extend((password, unquote(password)))
    return tuple(sorted({s for s in found if len(s) >= _MIN_LITERAL}, key=len, reverse=True))


def formatter(component: str, settings: Settings) -> logging.Formatter:
    """The formatter LOG_FORMAT names for component's lines."""
    secrets = secrets_of(settings)
    if settings.log_format == "text":
        return TextLines(component, secrets)
    return JsonLines(component, secrets)


def configure(component: str, settings: Settings, level: str | None = None) -> None:
    """Send every logger's records (the libraries' too) to stderr in LOG_FORMAT at LOG_LEVEL
    (or level), replacing whatever handlers were installed before."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(component, settings))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel((level or settings.log_level).upper())
    for name in _OWN_HANDLERS:
        library = logging.getLogger(name)
        library.handlers.clear()
        library.propagate = True
        library.setLevel(logging.NOTSET)  # LOG_LEVEL decides, not the library's own setup
        library.disabled = False
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught


def _log_uncaught(kind: type[BaseException], value: BaseException, tb: Any) -> None:
    """An exception that ends the process, as a log line like any other."""
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, value, tb)
        return
    logging.getLogger("linkpulse").critical("uncaught exception", exc_info=(kind, value, tb))
