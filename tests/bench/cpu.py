"""Which process burns what: CPU time per process group from /proc, before and after a run.

A group is a set of pids (a bench process and its descendants) or every process whose command
name matches (`postgres` counts all its backends). The machine's total comes from /proc/stat, so
what the named groups leave over (other users of the machine) shows as "other".
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")
# Group name -> /proc/<pid>/comm of its processes (comm is cut at 15 characters).
SERVERS = {
    "clickhouse-server": ("clickhouse-serv", "clickhouse-server"),
    "redis-server": ("redis-server",),
    "postgres": ("postgres",),
}


def _stat(pid: int) -> tuple[str, int, float] | None:
    """(comm, parent pid, CPU seconds in user and system mode) of a live process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = text[text.index("(") + 1 : text.rindex(")")]
    fields = text[text.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
    return comm, int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK


def _processes() -> dict[int, tuple[str, int, float]]:
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _stat(int(entry))) is not None:
            found[int(entry)] = stat
    return found


def _machine_seconds() -> float:
    """Busy CPU seconds of the whole machine since boot (every core)."""
    first = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, idle, iowait, irq, softirq, steal = (int(v) for v in first[:8])
    return (user + nice + system + irq + softirq + steal) / TICK


@dataclass(frozen=True)
class Snapshot:
    """CPU seconds per group and of the machine at one moment."""

    groups: dict[str, float]
    machine: float


def snapshot(roots: Mapping[str, int]) -> Snapshot:
    """CPU seconds so far of each root pid's process tree and of each server group."""
    procs = _processes()
    children: dict[int, list[int]] = {}
    for pid, (_, ppid, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    groups: dict[str, float] = {}
    for name, root in roots.items():
        total, todo = 0.0, [root]
        while todo:
            pid = todo.pop()
            if pid in procs:
                total += procs[pid][2]
                todo.extend(children.get(pid, []))
        groups[name] = total
    for name, comms in SERVERS.items():
        groups[name] = sum(stat[2] for stat in procs.values() if stat[0] in comms)
    return Snapshot(groups, _machine_seconds())


@dataclass(frozen=True)
class Split:
    """CPU used over a run, in cores (1.0 = one core busy the whole run)."""

    seconds: float
    by_group: dict[str, float]
    machine: float

    @property
    def other(self) -> float:
        """What the named groups do not account for (other processes on the machine)."""
        return max(0.0, self.machine - sum(self.by_group.values()))

    def text(self) -> str:
        """`gateway 0.91, query 0.40, …, other 0.2 of 2 cores`."""
        busiest = sorted(self.by_group.items(), key=lambda kv: -kv[1])
        parts = [f"{name} {cores:.2f}" for name, cores in busiest if cores >= 0.005]
        parts.append(f"other {self.other:.2f}")
        return ", ".join(parts) + f" (of {os.cpu_count()} cores)"


def split(before: Snapshot, after: Snapshot, seconds: float) -> Split:
    """Cores each group used between the two snapshots."""
    by_group = {
        name: max(0.0, after.groups.get(name, 0.0) - before.groups.get(name, 0.0)) / seconds
        for name in after.groups
    }
    return Split(seconds, by_group, (after.machine - before.machine) / seconds)
