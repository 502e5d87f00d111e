"""Lua scripts on Redis pipelines, loaded once per connection pool rather than per call.

redis-py checks every script of a pipeline with SCRIPT EXISTS before each execute (a round trip
a request); here a script is checked and loaded with the first pipeline of a pool that queues
it, then only called by sha. A server that lost its scripts (restart, SCRIPT FLUSH) answers
NOSCRIPT: the caller then `forget`s the pool's scripts and runs its pipeline again.
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Sequence
from typing import Any

from redis.asyncio.client import Pipeline
from redis.asyncio.connection import ConnectionPool
from redis.exceptions import NoScriptError

_loaded: weakref.WeakKeyDictionary[ConnectionPool, set[str]] = weakref.WeakKeyDictionary()


def _sha(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()  # noqa: S324 - Redis names scripts by SHA-1


def queue(pipe: Pipeline, text: str, keys: Sequence[str], args: Sequence[Any]) -> None:
    """Queue EVALSHA of the script text on pipe, loading it first if this pool has not yet."""
    sha = _sha(text)
    loaded = _loaded.setdefault(pipe.connection_pool, set())
    if sha not in loaded:
        pipe.scripts.add(pipe.register_script(text))  # type: ignore[arg-type]  # sync-typed
        loaded.add(sha)
    pipe.evalsha(sha, len(keys), *keys, *args)


def missing(results: Sequence[Any]) -> bool:
    """True when a pipeline's results hold NOSCRIPT: Redis lost the scripts."""
    return any(isinstance(r, NoScriptError) for r in results)


def forget(pipe: Pipeline) -> None:
    """Load the pool's scripts again with its next pipelines."""
    _loaded.pop(pipe.connection_pool, None)


# A Lua function the scripts that take many rows in one argument share: the lines of a text
# (plain find, not a pattern: this runs over every ingested row).
SPLIT_LINES = """
local function split_lines(text)
  local lines, at = {}, 1
  while true do
    local stop = string.find(text, '\\n', at, true)
    if not stop then
      lines[#lines + 1] = string.sub(text, at)
      return lines
    end
    lines[#lines + 1] = string.sub(text, at, stop - 1)
    at = stop + 1
  end
end
"""
