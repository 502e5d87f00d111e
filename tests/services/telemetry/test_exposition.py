"""Serving metrics: a port of its own, the build info, the multiprocess directory."""

from __future__ import annotations

import os
import socket
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.config import Settings
from services.telemetry import exposition
from tests.ports import free_port


def _settings(tmp_path: Path) -> Settings:
    return replace(Settings(), run_dir=tmp_path, metrics_host="127.0.0.1")


def test_serve_answers_metrics_with_the_build_info(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    monkeypatch.setenv("AUDIT_METRICS_PORT", str(port))
    monkeypatch.delenv("METRICS_PORT", raising=False)
    assert exposition.serve(_settings(tmp_path), "audit") == port
    answer = httpx.get(f"http://127.0.0.1:{port}/metrics")
    assert answer.status_code == 200
    families = {f.name: f for f in text_string_to_metric_families(answer.text)}
    info = [s.labels for s in families["linkpulse_build_info"].samples]
    assert {"component": "audit", "version": exposition.version()} in info
    assert "linkpulse_grpc_requests" in families  # declared, even before any call


def test_port_zero_serves_nothing_and_a_taken_port_does_not_stop_the_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("METRICS_PORT", "0")
    assert exposition.serve(_settings(tmp_path), "worker") is None
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        monkeypatch.setenv("METRICS_PORT", str(taken.getsockname()[1]))
        assert exposition.serve(_settings(tmp_path), "worker") is None


def test_one_process_keeps_its_values_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(exposition.MULTIPROC_VARIABLE, raising=False)
    assert exposition.share_between_processes(_settings(tmp_path), "gateway", 1) is None
    assert exposition.MULTIPROC_VARIABLE not in os.environ
    body, content_type = exposition.render(None)
    assert content_type.startswith("text/plain") and b"linkpulse_http_requests" in body


def test_workers_share_an_emptied_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(exposition.MULTIPROC_VARIABLE, raising=False)
    directory = tmp_path / "metrics" / "gateway"
    directory.mkdir(parents=True)
    (directory / "counter_1.db").write_bytes(b"an earlier run")
    (directory / f"counter_{os.getpid()}.db").write_bytes(b"")  # this process's own, kept
    shared = exposition.share_between_processes(_settings(tmp_path), "gateway", 2)
    assert shared == directory
    assert os.environ[exposition.MULTIPROC_VARIABLE] == str(directory)
    assert [p.name for p in directory.iterdir()] == [f"counter_{os.getpid()}.db"]
    # A configured directory is used as it is named.
    elsewhere = tmp_path / "elsewhere"
    monkeypatch.setenv(exposition.MULTIPROC_VARIABLE, str(elsewhere))
    assert exposition.share_between_processes(_settings(tmp_path), "gateway", 1) == elsewhere
    assert elsewhere.is_dir()


def test_render_adds_up_the_shared_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prometheus_client import values
    from prometheus_client.mmap_dict import MmapedDict

    monkeypatch.setenv(exposition.MULTIPROC_VARIABLE, str(tmp_path))
    key = values.mmap_key(
        "linkpulse_http_requests",
        "linkpulse_http_requests_total",
        ("route", "method", "status"),
        ("/healthz", "GET", "200"),
        "",
    )
    for pid, count in ((101, 2.0), (102, 3.0)):  # two workers' files
        written = MmapedDict(str(tmp_path / f"counter_{pid}.db"))
        written.write_value(key, count, 0.0)
        written.close()
    body, _ = exposition.render("text/plain")
    samples = [
        s
        for f in text_string_to_metric_families(body.decode())
        for s in f.samples
        if s.name == "linkpulse_http_requests_total"
    ]
    assert [(s.labels["route"], s.value) for s in samples] == [("/healthz", 5.0)]


def test_the_live_gauges_of_a_process_gone_are_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess
    import sys

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=True,
                          capture_output=True, text=True)  # fmt: skip
    dead = int(gone.stdout)
    monkeypatch.setenv(exposition.MULTIPROC_VARIABLE, str(tmp_path))
    for pid in (dead, os.getpid()):
        (tmp_path / f"gauge_livesum_{pid}.db").write_bytes(b"")
        (tmp_path / f"counter_{pid}.db").write_bytes(b"")
    assert exposition.forget_dead_processes() == [dead]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"counter_{dead}.db", f"counter_{os.getpid()}.db", f"gauge_livesum_{os.getpid()}.db"]
    )
