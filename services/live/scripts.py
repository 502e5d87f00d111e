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

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.asyncio.cluster import ClusterPipeline
from redis.asyncio.connection import ConnectionPool
from redis.exceptions import NoScriptError

from services.stores.redisclient import is_cluster

# Per pool, the scripts a pipeline of the pool has run; by sha, the text of every queued script.
_loaded: weakref.WeakKeyDictionary[ConnectionPool, set[str]] = weakref.WeakKeyDictionary()
_texts: dict[str, str] = {}


def _sha(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()  # noqa: S324 - Redis names scripts by SHA-1


def queue(pipe: Pipeline, text: str, keys: Sequence[str], args: Sequence[Any]) -> None:
    """Queue EVALSHA of the script text on pipe, loading it first until this pool has run it.
    Run the pipeline with `execute`. On a cluster pipeline the script is loaded on every
    primary by `execute` when one answers NOSCRIPT (cluster pipelines hold no scripts)."""
    sha = _sha(text)
    _texts[sha] = text
    if not isinstance(pipe, ClusterPipeline) and sha not in _loaded.get(pipe.connection_pool, ()):
        pipe.scripts.add(pipe.register_script(text))  # type: ignore[arg-type]  # sync-typed
    # The raw command: redis-py's cluster pipelines refuse their evalsha() method, not EVALSHA.
    pipe.execute_command("EVALSHA", sha, len(keys), *keys, *args)


async def execute(pipe: Pipeline) -> list[Any]:
    """The results of pipe's commands (errors as values), each command run at most once.

    Commands Redis answered NOSCRIPT did not run (it lost those scripts, possibly only some of
    them: a pipeline of a concurrent caller may have loaded the others again); they alone run
    once more, after their scripts are loaded, and their new results take their places.
    """
    if isinstance(pipe, ClusterPipeline):
        return await _execute_cluster(pipe)
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


async def _execute_cluster(pipe: ClusterPipeline) -> list[Any]:
    """execute on a cluster pipeline: scripts a node lacks are loaded on every primary (SCRIPT
    LOAD goes to all of them), then the calls that failed, and only those, run once more."""
    stack = [(command.args, command.kwargs) for command in pipe._command_stack]  # noqa: SLF001
    results = list(await pipe.execute(raise_on_error=False))
    failed = [at for at, result in enumerate(results) if isinstance(result, NoScriptError)]
    if not failed:
        return results
    client = pipe._client  # noqa: SLF001
    for sha in {stack[at][0][1] for at in failed}:
        await client.script_load(_texts[str(sha)])
    async with client.pipeline() as again_pipe:
        for at in failed:
            args, options = stack[at]
            again_pipe.execute_command(*args, **options)
        again = await again_pipe.execute(raise_on_error=False)
    for at, result in zip(failed, again, strict=True):
        results[at] = result
    return results


def pipeline(redis: Redis, *, transaction: bool) -> Pipeline:
    """A pipeline of redis; on a Redis Cluster never a transaction (redis-py's cluster pipelines
    have none): its commands then run in order on the one node of their one slot, each script
    atomic on its own."""
    if is_cluster(redis):
        return redis.pipeline()
    return redis.pipeline(transaction=transaction)


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
