"""Queueing a Lua script on a Redis pipeline (loaded on the server by the pipeline if missing)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.asyncio.client import Pipeline


def queue(pipe: Pipeline, text: str, keys: Sequence[str], args: Sequence[Any]) -> None:
    """Queue EVALSHA of the script text on pipe; execute() loads it first when Redis lacks it."""
    script = pipe.register_script(text)
    pipe.scripts.add(script)  # type: ignore[arg-type]  # typed for the sync Script
    pipe.evalsha(script.sha, len(keys), *keys, *args)
