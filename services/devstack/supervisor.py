"""Supervisor of one stack process: runs it as a child and restarts it with capped backoff.

`python -m services.devstack.supervisor --state FILE -- ARGV…` runs ARGV until SIGTERM or
SIGINT, starting it again whenever it exits (like compose's `restart: unless-stopped`), and
keeps its child's pid and restart count in FILE (JSON) for `stack status`.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from workers.backoff import delay

FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0
# A child that ran this long was healthy: its next restart starts the backoff over.
STABLE_SECONDS = 60.0
# On stop, the child gets the signal with the supervisor's process group; if it still runs
# after this, the supervisor forwards SIGTERM itself, and SIGKILLs it after the grace.
FORWARD_AFTER_SECONDS = 1.0
STOP_GRACE_SECONDS = 12.0
_POLL_SECONDS = 0.1


@dataclass
class SupervisorState:
    """What `stack status` shows of a supervised process."""

    child_pid: int | None = None
    restarts: int = 0
    last_exit: int | None = None
    state: str = "starting"  # starting | running | backoff | stopped
    since: str = ""


def read_state(path: Path) -> SupervisorState | None:
    """The state a supervisor last wrote to path (None when there is none)."""
    try:
        raw: Any = json.loads(path.read_text())
        return SupervisorState(**raw)
    except (OSError, ValueError, TypeError):
        return None


def _say(message: str) -> None:
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    print(f"--- {stamp} supervisor: {message}", flush=True)


class Supervisor:
    """Runs argv, restarting it until stopped."""

    def __init__(self, argv: list[str], state_path: Path, first: float, cap: float) -> None:
        self.argv = argv
        self.state_path = state_path
        self.first = first
        self.cap = cap
        self.state = SupervisorState()
        self.stop_requested_at: float | None = None

    def request_stop(self, signum: int, _frame: FrameType | None) -> None:
        """Signal handler: stop restarting; the child is stopped by the main loop."""
        if self.stop_requested_at is None:
            self.stop_requested_at = time.monotonic()

    def _save(self, state: str) -> None:
        self.state.state = state
        self.state.since = datetime.now(UTC).isoformat(timespec="seconds")
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self.state)) + "\n")
        tmp.replace(self.state_path)

    def _wait_child(self, child: subprocess.Popen[bytes]) -> int:
        forwarded = killed = False
        while (code := child.poll()) is None:
            if self.stop_requested_at is not None:
                waited = time.monotonic() - self.stop_requested_at
                if waited >= STOP_GRACE_SECONDS and not killed:
                    child.kill()
                    killed = True
                elif waited >= FORWARD_AFTER_SECONDS and not forwarded:
                    child.terminate()
                    forwarded = True
            time.sleep(_POLL_SECONDS)
        return code

    def _pause(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while self.stop_requested_at is None and time.monotonic() < deadline:
            time.sleep(_POLL_SECONDS)

    def run(self) -> int:
        """Run and restart the child until a stop is requested; the last exit status."""
        attempt = 0
        code = 0
        while self.stop_requested_at is None:
            started = time.monotonic()
            child = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL)
            self.state.child_pid = child.pid
            self._save("running")
            code = self._wait_child(child)
            self.state.last_exit = code
            if self.stop_requested_at is not None:
                break
            ran = time.monotonic() - started
            attempt = 1 if ran >= STABLE_SECONDS else attempt + 1
            wait = delay(attempt, self.first, self.cap)
            self.state.restarts += 1
            self._save("backoff")
            _say(
                f"child {child.pid} exited with status {code} after {ran:.1f}s;"
                f" restart {self.state.restarts} in {wait:.1f}s"
            )
            self._pause(wait)
        self.state.child_pid = None
        self._save("stopped")
        return 0


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and supervise until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(prog="services.devstack.supervisor")
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("--first", type=float, default=FIRST_BACKOFF_SECONDS)
    parser.add_argument("--cap", type=float, default=MAX_BACKOFF_SECONDS)
    parser.add_argument("child", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    child = args.child[1:] if args.child[:1] == ["--"] else args.child
    if not child:
        parser.error("the command to supervise follows --")
    supervisor = Supervisor(child, args.state, args.first, args.cap)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, supervisor.request_stop)
    return supervisor.run()


if __name__ == "__main__":
    sys.exit(main())
