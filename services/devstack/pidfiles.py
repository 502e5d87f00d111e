"""Pid files, and whether the process they name is still ours and alive."""

from __future__ import annotations

import os
from pathlib import Path


def read_pid(path: Path) -> int | None:
    """Pid stored in path, or None when the file is missing or garbled."""
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    return int(text) if text.isdigit() else None


def write_pid(path: Path, pid: int) -> None:
    """Store pid in path, replacing it atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(f"{pid}\n")
    tmp.replace(path)


def remove_pid(path: Path) -> None:
    """Delete the pid file if present."""
    path.unlink(missing_ok=True)


def cmdline(pid: int) -> str:
    """Command line of pid with arguments joined by spaces ('' when unreadable)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.rstrip(b"\0").replace(b"\0", b" ").decode(errors="replace")


def pid_alive(pid: int) -> bool:
    """Whether pid runs (reaping it first if it is our exited child)."""
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        if reaped == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    # The state letter follows the parenthesised command name; Z is a zombie.
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def live_pid(path: Path, marker: str) -> int | None:
    """Pid from path if that process is alive and its command line contains marker."""
    pid = read_pid(path)
    if pid is None or not pid_alive(pid):
        return None
    line = cmdline(pid)
    # An unreadable command line (a process of another user) is given the benefit of the doubt.
    if line and marker not in line:
        return None
    return pid
