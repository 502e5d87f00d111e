"""Supervised stack processes: a child that dies is restarted with backoff, counted, and stopped
with its supervisor."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from services.devstack import components, processes, stack, supervisor
from services.devstack.pidfiles import pid_alive
from tests.services.devstack.helpers import isolated_settings

# Stands in for `linkpulse serve worker`: the marker argument makes the pid file trusted.
SLEEPER = (sys.executable, "-c", "import time; time.sleep(600)", "services.cli.main serve worker")
QUITTER = (sys.executable, "-c", "import sys; sys.exit(3)", "services.cli.main serve worker")


def _until(check: Callable[[], bool], seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture
def supervised(tmp_path: Path) -> Iterator[Callable[..., processes.ProcessSpec]]:
    """Factory of a supervised `worker` spec running child argv; stopped afterwards."""
    settings = isolated_settings(tmp_path)
    made: list[processes.ProcessSpec] = []

    def make(child: tuple[str, ...], *options: str) -> processes.ProcessSpec:
        base = components.supervised_spec(settings, "worker")
        head = base.argv[: base.argv.index("--")]
        spec = replace(base, argv=(*head, *options, "--", *child), settle_seconds=0.5)
        made.append(spec)
        return spec

    make.settings = settings  # type: ignore[attr-defined]
    yield make
    for spec in made:
        processes.stop(spec)


def _state(settings) -> supervisor.SupervisorState:  # noqa: ANN001
    state = supervisor.read_state(components.supervisor_state_path(settings, "worker"))
    assert state is not None
    return state


def test_a_killed_child_is_restarted_and_counted_in_status(supervised) -> None:  # noqa: ANN001
    settings = supervised.settings
    spec = supervised(SLEEPER, "--first", "0.2")
    started = processes.start(spec)
    _until(lambda: _state(settings).child_pid is not None)
    first = _state(settings).child_pid
    assert first is not None and first != started.pid

    [worker] = [p for p in stack.status(settings)["processes"] if p["name"] == "worker"]
    assert (worker["state"], worker["pid"], worker["restarts"]) == ("running", started.pid, 0)
    assert worker["child_pid"] == first

    os.kill(first, signal.SIGKILL)
    _until(lambda: _state(settings).restarts == 1 and _state(settings).state == "running")
    second = _state(settings).child_pid
    assert second is not None and second != first and pid_alive(second)
    [worker] = [p for p in stack.status(settings)["processes"] if p["name"] == "worker"]
    assert (worker["pid"], worker["restarts"], worker["child_pid"]) == (started.pid, 1, second)
    log = spec.log_path.read_text()
    assert f"child {first} exited with status -9" in log and "restart 1 in 0.2s" in log

    # `stack down` stops the supervisor and its child, and nothing comes back.
    down = stack.down(settings)
    assert "stopped" in {p["state"] for p in down["processes"]}
    assert not pid_alive(started.pid) and not pid_alive(second)
    assert _state(settings).state == "stopped"
    time.sleep(0.5)
    assert processes.status(spec).state == "not running"


def test_a_child_that_keeps_exiting_is_restarted_with_capped_backoff(supervised) -> None:  # noqa: ANN001
    settings = supervised.settings
    spec = supervised(QUITTER, "--first", "0.1", "--cap", "0.4")
    processes.start(spec)
    _until(lambda: _state(settings).restarts >= 5)
    assert _state(settings).last_exit == 3
    log = spec.log_path.read_text()
    waits = [line.rsplit(" in ", 1)[1] for line in log.splitlines() if "supervisor: child" in line]
    assert waits[:5] == ["0.1s", "0.2s", "0.4s", "0.4s", "0.4s"]
    processes.stop(spec)
    assert _state(settings).state == "stopped"


def test_sigterm_to_the_supervisor_alone_stops_its_child(supervised) -> None:  # noqa: ANN001
    settings = supervised.settings
    spec = supervised(SLEEPER)
    started = processes.start(spec)
    assert started.pid is not None
    _until(lambda: _state(settings).child_pid is not None)
    child = _state(settings).child_pid
    assert child is not None
    os.kill(started.pid, signal.SIGTERM)  # not the group: the supervisor forwards it
    _until(lambda: not pid_alive(started.pid) and not pid_alive(child))
    assert _state(settings).restarts == 0


def test_stack_up_and_down_use_supervised_specs(tmp_path: Path) -> None:
    settings = isolated_settings(tmp_path)
    for name, spec in zip(
        components.COMPONENTS, components.supervised_specs(settings), strict=True
    ):
        assert spec.argv[1:3] == ("-m", "services.devstack.supervisor")
        assert spec.identity in " ".join(spec.argv)  # the pid file's process is recognised
        assert spec.pid_path == components.spec(settings, name).pid_path
