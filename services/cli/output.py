"""JSON output of CLI commands."""

from __future__ import annotations

import sys
from typing import Any

import orjson


def print_json(value: Any) -> None:
    """Write value as indented JSON on stdout."""
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2, default=str).decode() + "\n")
    sys.stdout.flush()
