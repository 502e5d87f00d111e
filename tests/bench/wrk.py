"""Debian's `wrk` as the load tool: installing it when missing, Lua scripts, parsed results.

Every script ends with a `done()` that prints one `WRK {json}` line (requests, duration,
percentiles, errors, and how many requests the threads generated), so nothing is scraped from
wrk's human-readable summary.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.bench.progress import say

THREADS = 2
TIMEOUT_SECONDS = 30
MARK = "WRK "
DONE = """
local threads = {}
function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end
function done(summary, latency, requests)
  local sent, hits = 0, 0
  for _, t in ipairs(threads) do
    sent = sent + (t:get("sent") or 0)
    hits = hits + (t:get("hits") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'WRK {"requests": %d, "duration_us": %d, "bytes": %d, "p50_us": %d, "p90_us": %d,'
    .. ' "p99_us": %d, "max_us": %d, "connect": %d, "read": %d, "write": %d, "status": %d,'
    .. ' "timeout": %d, "sent": %d, "hits": %d}\\n',
    summary.requests, summary.duration, summary.bytes, latency:percentile(50),
    latency:percentile(90), latency:percentile(99), latency.max, e.connect, e.read, e.write,
    e.status, e.timeout, sent, hits))
end
"""


@dataclass(frozen=True)
class WrkResult:
    """One wrk run."""

    connections: int
    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    socket_errors: int  # connect, read and write errors
    timeouts: int
    non_2xx: int  # answers with a status of 400 or more
    sent: int  # requests the threads generated (answered or still in flight at the end)
    hits: int  # answers with x-cache: HIT (counted by scripts that define response())

    @property
    def rate(self) -> float:
        """Answered requests per second."""
        return self.requests / self.seconds if self.seconds else float("nan")

    @property
    def ok(self) -> int:
        """Answers with a status below 400."""
        return self.requests - self.non_2xx

    @property
    def unanswered(self) -> int:
        """Requests still in flight when the run ended (wrk drops them)."""
        return max(0, self.sent - self.requests)

    @property
    def clean(self) -> bool:
        """Answers came, none a socket error, a timeout or an error status."""
        return self.requests > 0 and not (self.socket_errors or self.timeouts or self.non_2xx)


def lua_string(value: str) -> str:
    """A Lua string literal."""
    return json.dumps(value)  # JSON's escapes are a subset of Lua's


def ensure_installed() -> str:
    """The wrk binary, installed with apt-get (as root or through sudo) when missing."""
    found = shutil.which("wrk")
    if found:
        return found
    say("installing wrk with apt-get")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [*sudo, "apt-get", "install", "-y", "--no-install-recommends", "wrk"]
    if subprocess.run(install, env=env, check=False).returncode != 0:
        subprocess.run([*sudo, "apt-get", "update"], env=env, check=True)
        subprocess.run(install, env=env, check=True)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("bench: wrk is not installed and apt-get could not install it")
    return found


def start(
    binary: str, url: str, script: Path, connections: int, seconds: int
) -> subprocess.Popen[str]:
    """wrk running script against url (read its result with `result`)."""
    argv = [
        binary,
        f"-t{min(THREADS, connections)}",
        f"-c{connections}",
        f"-d{seconds}s",
        f"--timeout={TIMEOUT_SECONDS}s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def parse(returncode: int, out: str, err: str, connections: int) -> WrkResult:
    """The result in a finished wrk's `WRK {json}` line."""
    line = next((ln for ln in out.splitlines() if ln.startswith(MARK)), None)
    if returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({returncode}): {err.strip()[:500]} {out[-500:]}")
    data = json.loads(line[len(MARK) :])
    return WrkResult(
        connections=connections,
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000,
        socket_errors=data["connect"] + data["read"] + data["write"],
        timeouts=data["timeout"],
        non_2xx=data["status"],
        sent=data["sent"],
        hits=data["hits"],
    )


def script(body: str) -> str:
    """A whole script: body (which defines request() and counts `sent`) and the done() hook."""
    return body + DONE
