"""Serving the Prometheus metrics: a port of its own for most processes, the gateway's /metrics.

A process that forks workers (the gateway with GATEWAY_WORKERS > 1) shares their values through
prometheus-client's multiprocess mode: the parent names an emptied directory in
PROMETHEUS_MULTIPROC_DIR before the workers start (they import prometheus-client with it set),
and /metrics, answered by any worker, adds up every worker's files.
"""

from __future__ import annotations

import logging
import os
import shutil
from importlib import metadata
from pathlib import Path

from prometheus_client import REGISTRY, CollectorRegistry, multiprocess, start_http_server
from prometheus_client.exposition import choose_encoder

from services.config import Settings
from services.telemetry import metrics

log = logging.getLogger("linkpulse.metrics")

MULTIPROC_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
PATH = "/metrics"


def version() -> str:
    """The installed linkpulse version ("unknown" when run from an uninstalled tree)."""
    try:
        return metadata.version("linkpulse")
    except metadata.PackageNotFoundError:
        return "unknown"


def announce(component: str) -> None:
    """Set linkpulse_build_info{version, component} to 1 in this process (and, when values are
    shared, drop the live gauges of processes gone without saying so: a killed worker)."""
    metrics.BUILD_INFO.labels(version(), component).set(1)
    if shared():
        forget_dead_processes()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def forget_dead_processes() -> list[int]:
    """Drop the live gauges of the processes that wrote to the shared directory and are gone;
    returns their pids."""
    directory = os.environ.get(MULTIPROC_VARIABLE)
    if not directory:
        return []
    pids = set()
    for found in Path(directory).glob("gauge_live*_*.db"):
        written_by = found.stem.rsplit("_", 1)[-1]
        if written_by.isdigit():
            pids.add(int(written_by))
    gone = sorted(pid for pid in pids if not _alive(pid))
    for pid in gone:
        multiprocess.mark_process_dead(pid, directory)
    return gone


def serve(settings: Settings, component: str) -> int | None:
    """Serve this process's metrics on METRICS_HOST and the component's metrics port (in a
    daemon thread); the port, or None when it is 0 or taken (the process runs on unscraped)."""
    announce(component)
    port = settings.metrics_port(component)
    if port <= 0:
        return None
    try:
        server, _thread = start_http_server(port, addr=settings.metrics_host)
    except OSError as exc:
        # Metrics never stop a process from doing its job; the scrape target shows it down.
        log.error(
            "%s: cannot serve metrics on %s:%d: %s", component, settings.metrics_host, port, exc
        )
        return None
    bound = int(server.server_address[1])
    log.info("%s: metrics on http://%s:%d%s", component, settings.metrics_host, bound, PATH)
    return bound


def multiprocess_dir(settings: Settings, component: str) -> Path:
    """Where the processes of component share their values: PROMETHEUS_MULTIPROC_DIR, else
    RUN_DIR/metrics/<component>."""
    configured = os.environ.get(MULTIPROC_VARIABLE)
    return Path(configured) if configured else Path(settings.run_dir) / "metrics" / component


def share_between_processes(settings: Settings, component: str, workers: int) -> Path | None:
    """Before starting a component's worker processes (when more than one, or when
    PROMETHEUS_MULTIPROC_DIR is set anyway): clear its multiprocess directory of the values of
    earlier runs and name it in PROMETHEUS_MULTIPROC_DIR for the workers; returns it."""
    if workers <= 1 and not shared():
        return None
    directory = multiprocess_dir(settings, component)
    directory.mkdir(parents=True, exist_ok=True)
    ours = f"_{os.getpid()}.db"  # this process's own files, open since its metrics were made
    for found in directory.iterdir():
        if found.is_dir():
            shutil.rmtree(found)
        elif not found.name.endswith(ours):
            found.unlink()
    os.environ[MULTIPROC_VARIABLE] = str(directory)
    return directory


def shared() -> bool:
    """True when this process records into a multiprocess directory."""
    return bool(os.environ.get(MULTIPROC_VARIABLE))


def render(accept: str | None) -> tuple[bytes, str]:
    """The exposition (in the format the Accept header asks for) and its content type: every
    worker's values added up when shared, else this process's."""
    if shared():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type


def process_exit() -> None:
    """On a worker's exit: drop its live gauges (its counters stay in the total)."""
    if shared():
        multiprocess.mark_process_dead(os.getpid())
