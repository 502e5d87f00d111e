"""Background processes: start once, wait for readiness, stop with SIGTERM then SIGKILL."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from services.devstack import processes
from services.devstack.endpoints import Endpoint
from services.devstack.failures import DevstackError
from services.devstack.pidfiles import pid_alive, read_pid, write_pid
from services.devstack.probes import tcp_open, tcp_probe
from tests.ports import free_port

# A trivial long-running server: listens on the port given as argument until killed.
LISTENER = (
    "import socket, sys, time\n"
    "s = socket.socket()\n"
    "s.bind(('127.0.0.1', int(sys.argv[1])))\n"
    "s.listen()\n"
    "print('listening', flush=True)\n"
    "time.sleep(600)\n"
)
SIGTERM_IGNORER = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
)


@pytest.fixture
def make_spec(tmp_path: Path) -> Iterator[Any]:
    """Factory of specs under tmp_path; whatever they started is stopped afterwards."""
    made: list[processes.ProcessSpec] = []

    def make(name: str, argv: tuple[str, ...], **options: Any) -> processes.ProcessSpec:
        spec = processes.ProcessSpec(
            name=name,
            argv=argv,
            pid_path=tmp_path / "pids" / f"{name}.pid",
            log_path=tmp_path / "logs" / f"{name}.log",
            **options,
        )
        made.append(spec)
        return spec

    yield make
    for spec in made:
        processes.stop(spec)


def _listener(make_spec: Any, name: str = "listener", **options: Any) -> processes.ProcessSpec:
    port = free_port()
    options.setdefault("ready", tcp_probe(Endpoint("127.0.0.1", port)))
    options.setdefault("ready_timeout", 20.0)
    return make_spec(name, (sys.executable, "-c", LISTENER, str(port)), **options)


def test_start_waits_for_readiness_and_records_pid(make_spec: Any) -> None:
    spec = _listener(make_spec)
    result = processes.start(spec)
    assert result.state == "started" and result.ready
    assert read_pid(spec.pid_path) == result.pid
    assert spec.ready is not None and spec.ready()
    assert "starting:" in spec.log_path.read_text()
    assert result.pid is not None and os.getpgid(result.pid) == result.pid  # own session


def test_second_start_reuses_the_running_process(make_spec: Any) -> None:
    spec = _listener(make_spec)
    first = processes.start(spec)
    second = processes.start(spec)
    assert second.state == "running"
    assert second.pid == first.pid
    assert processes.status(spec).state == "running"


def test_stop_terminates_and_removes_pid_file(make_spec: Any) -> None:
    spec = _listener(make_spec)
    pid = processes.start(spec).pid
    assert pid is not None
    result = processes.stop(spec)
    assert result.state == "stopped" and result.pid == pid
    assert not pid_alive(pid)
    assert not spec.pid_path.exists()
    assert processes.stop(spec).state == "not running"
    assert processes.status(spec).state == "not running"


def test_stop_kills_a_process_that_ignores_sigterm(make_spec: Any) -> None:
    spec = make_spec(
        "stubborn",
        (sys.executable, "-c", SIGTERM_IGNORER),
        settle_seconds=0.5,
        stop_grace=0.5,
    )
    pid = processes.start(spec).pid
    assert pid is not None
    assert processes.stop(spec).state == "stopped"
    assert not pid_alive(pid)


def test_process_that_exits_early_fails_with_its_log(make_spec: Any) -> None:
    spec = make_spec(
        "crasher",
        (sys.executable, "-c", "print('config is broken'); raise SystemExit(3)"),
        ready=lambda: False,
    )
    with pytest.raises(DevstackError) as caught:
        processes.start(spec)
    message = str(caught.value)
    assert "status 3" in message
    assert str(spec.log_path) in message
    assert "config is broken" in message
    assert not spec.pid_path.exists()


def test_readiness_timeout_stops_the_process_and_points_at_log(make_spec: Any) -> None:
    spec = _listener(make_spec, ready=lambda: False, ready_timeout=0.6, stop_grace=2.0)
    with pytest.raises(DevstackError, match="not ready after") as caught:
        processes.start(spec)
    assert str(spec.log_path) in str(caught.value)
    assert not spec.pid_path.exists()
    port = int(spec.argv[-1])
    assert not tcp_open(Endpoint("127.0.0.1", port))


def test_pid_file_of_an_unrelated_process_is_not_trusted(make_spec: Any) -> None:
    spec = _listener(make_spec)
    write_pid(spec.pid_path, os.getpid())  # alive, but not the listener
    assert processes.running_pid(spec) is None
    result = processes.start(spec)
    assert result.state == "started" and result.pid != os.getpid()


def test_alive_process_without_probe_is_ready_after_settling(make_spec: Any) -> None:
    spec = make_spec("sleeper", ("sleep", "600"), settle_seconds=0.3)
    result = processes.start(spec)
    assert result.state == "started"
    assert processes.status(spec).ready
