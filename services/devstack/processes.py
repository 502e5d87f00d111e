"""Background processes of the stack: start detached with a pid file and a log, wait, stop."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from services.devstack.failures import DevstackError
from services.devstack.pidfiles import live_pid, pid_alive, remove_pid, write_pid
from services.devstack.probes import Probe

_POLL_SECONDS = 0.2
_KILL_WAIT_SECONDS = 5.0


@dataclass(frozen=True)
class ProcessSpec:
    """How to run, recognise and check one background process."""

    name: str
    argv: tuple[str, ...]
    pid_path: Path
    log_path: Path
    # None: a process that has stayed alive for settle_seconds counts as ready.
    ready: Probe | None = None
    # Substring of /proc/<pid>/cmdline that tells our process from a recycled pid.
    marker: str = ""
    env: Mapping[str, str] = field(default_factory=dict)
    ready_timeout: float = 60.0
    settle_seconds: float = 2.0
    stop_grace: float = 10.0

    @property
    def identity(self) -> str:
        """Marker looked for in the command line of the pid-file process."""
        return self.marker or " ".join(self.argv)


@dataclass(frozen=True)
class ProcessState:
    """Outcome of start/stop/status for one process."""

    name: str
    state: str  # started | running | stopped | not running
    pid: int | None
    log: Path
    ready: bool | None = None
    # Of a supervised process: how often its supervisor restarted it, and the child's pid.
    restarts: int | None = None
    child_pid: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form for the CLI."""
        supervised = (
            {"restarts": self.restarts, "child_pid": self.child_pid}
            if self.restarts is not None
            else {}
        )
        return {
            "name": self.name,
            "state": self.state,
            "pid": self.pid,
            "ready": self.ready,
            **supervised,
            "log": str(self.log),
        }


def running_pid(spec: ProcessSpec) -> int | None:
    """Pid of the running process started from spec, clearing a stale pid file."""
    pid = live_pid(spec.pid_path, spec.identity)
    if pid is None:
        remove_pid(spec.pid_path)
    return pid


def log_tail(path: Path, lines: int = 20) -> str:
    """Last lines of a log file ('' when there is none)."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 16384))
            text = handle.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _failure(spec: ProcessSpec, what: str) -> DevstackError:
    tail = log_tail(spec.log_path)
    detail = f"\n--- last lines of {spec.log_path} ---\n{tail}" if tail else ""
    return DevstackError(f"{spec.name} {what}; see {spec.log_path}{detail}")


def _wait_ready(spec: ProcessSpec, pid: int, proc: subprocess.Popen[bytes] | None) -> None:
    start = time.monotonic()
    while True:
        code = proc.poll() if proc is not None else (None if pid_alive(pid) else "?")
        if code is not None:
            raise _failure(spec, f"exited (status {code}) before it was ready")
        elapsed = time.monotonic() - start
        if spec.ready is None:
            if elapsed >= spec.settle_seconds:
                return
        elif spec.ready():
            return
        if elapsed >= spec.ready_timeout:
            raise _failure(spec, f"was not ready after {spec.ready_timeout:g}s")
        time.sleep(_POLL_SECONDS)


def start(spec: ProcessSpec) -> ProcessState:
    """Start the process unless it already runs, and wait until it is ready."""
    pid = running_pid(spec)
    if pid is not None:
        _wait_ready(spec, pid, None)
        return ProcessState(spec.name, "running", pid, spec.log_path, True)
    spec.log_path.parent.mkdir(parents=True, exist_ok=True)
    with spec.log_path.open("ab") as log:
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        log.write(f"\n--- {stamp} starting: {' '.join(spec.argv)}\n".encode())
        log.flush()
        try:
            proc = subprocess.Popen(
                spec.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **spec.env},
                start_new_session=True,
            )
        except OSError as exc:
            raise DevstackError(f"cannot start {spec.name} ({spec.argv[0]}): {exc}") from exc
    write_pid(spec.pid_path, proc.pid)
    try:
        _wait_ready(spec, proc.pid, proc)
    except DevstackError:
        terminate(proc.pid, spec.stop_grace)
        remove_pid(spec.pid_path)
        raise
    return ProcessState(spec.name, "started", proc.pid, spec.log_path, True)


def _signal(pid: int, pgid: int, sig: signal.Signals) -> None:
    try:
        if pgid == pid:
            os.killpg(pgid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _wait_gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while pid_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL_SECONDS)
    return True


def terminate(pid: int, grace: float) -> None:
    """SIGTERM pid (its process group when it leads one), SIGKILL after grace seconds."""
    try:
        pgid = os.getpgid(pid)
    except ProcessLookupError:
        return
    _signal(pid, pgid, signal.SIGTERM)
    if _wait_gone(pid, grace):
        return
    _signal(pid, pgid, signal.SIGKILL)
    if not _wait_gone(pid, _KILL_WAIT_SECONDS):
        raise DevstackError(f"process {pid} survived SIGKILL")


def kill(pid: int) -> None:
    """SIGKILL pid (its process group when it leads one) and wait until it is gone."""
    try:
        pgid = os.getpgid(pid)
    except ProcessLookupError:
        return
    _signal(pid, pgid, signal.SIGKILL)
    if not _wait_gone(pid, _KILL_WAIT_SECONDS):
        raise DevstackError(f"process {pid} survived SIGKILL")


def stop(spec: ProcessSpec) -> ProcessState:
    """Stop the process started from spec, if it runs."""
    pid = running_pid(spec)
    if pid is None:
        return ProcessState(spec.name, "not running", None, spec.log_path, False)
    terminate(pid, spec.stop_grace)
    remove_pid(spec.pid_path)
    return ProcessState(spec.name, "stopped", pid, spec.log_path, False)


def status(spec: ProcessSpec) -> ProcessState:
    """Whether the process runs and, if it has a probe, answers."""
    pid = running_pid(spec)
    if pid is None:
        return ProcessState(spec.name, "not running", None, spec.log_path, False)
    ready = spec.ready() if spec.ready is not None else True
    return ProcessState(spec.name, "running", pid, spec.log_path, ready)
