"""Lua scripts on Redis pipelines, loaded once per connection pool rather than per call.

redis-py checks every script of a pipeline with SCRIPT EXISTS before each execute (a round trip
a request); here a script is checked and loaded by the pipelines of a pool that queue it until
one of them has run it (`execute`), then only called by sha. A server that lost its scripts
(restart, SCRIPT FLUSH) answers NOSCRIPT to the calls it did not run: `execute` loads the
scripts again and runs those calls, and only those, once more, so that no call runs twice.
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Sequence
from typing import Any

from redis.asyncio.client import Pipeline
from redis.asyncio.connection import ConnectionPool
from redis.exceptions import NoScriptError

# Per pool, the scripts a pipeline of the pool has run; by sha, the text of every queued script.
_loaded: weakref.WeakKeyDictionary[ConnectionPool, set[str]] = weakref.WeakKeyDictionary()
_texts: dict[str, str] = {}


def _sha(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()  # noqa: S324 - Redis names scripts by SHA-1


def queue(pipe: Pipeline, text: str, keys: Sequence[str], args: Sequence[Any]) -> None:
    """Queue EVALSHA of the script text on pipe, loading it first until this pool has run it.
    Run the pipeline with `execute`."""
    sha = _sha(text)
    if sha not in _loaded.get(pipe.connection_pool, ()):
        _texts[sha] = text
        pipe.scripts.add(pipe.register_script(text))  # type: ignore[arg-type]  # sync-typed
    pipe.evalsha(sha, len(keys), *keys, *args)


async def execute(pipe: Pipeline) -> list[Any]:
    """The results of pipe's commands (errors as values), each command run at most once.

    Commands Redis answered NOSCRIPT did not run (it lost those scripts, possibly only some of
    them: a pipeline of a concurrent caller may have loaded the others again); they alone run
    once more, after their scripts are loaded, and their new results take their places.
    """
    stack = list(pipe.command_stack)
    pool = pipe.connection_pool
    loading = {script.sha for script in pipe.scripts}
    results = list(await pipe.execute(raise_on_error=False))
    failed = [at for at, result in enumerate(results) if isinstance(result, NoScriptError)]
    if not failed:
        _loaded.setdefault(pool, set()).update(loading)
        return results
    _loaded.pop(pool, None)
    for at in failed:
        args, options = stack[at]
        pipe.scripts.add(pipe.register_script(_texts[args[1]]))  # type: ignore[arg-type,index]
        pipe.execute_command(*args, **options)
    again = await pipe.execute(raise_on_error=False)
    for at, result in zip(failed, again, strict=True):
        results[at] = result
    return results


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
