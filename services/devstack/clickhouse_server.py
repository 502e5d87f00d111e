"""The dev-stack ClickHouse: install it if missing, start it from the project config, stop it."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.config import Settings
from services.devstack import processes
from services.devstack.apt import apt_install
from services.devstack.clickhouse_config import (
    DEFAULT_NATIVE_PORT,
    ClickHouseLayout,
    write_config,
)
from services.devstack.endpoints import Endpoint, from_url
from services.devstack.failures import DevstackError
from services.devstack.probes import http_probe, tcp_open

SERVER_PACKAGES = ("clickhouse-server", "clickhouse-client")
# Where Debian's package puts the server; /usr/sbin is not on every user's PATH.
_DEBIAN_SERVER = Path("/usr/sbin/clickhouse-server")
_READY_TIMEOUT = 90.0
_STOP_GRACE = 30.0


@dataclass(frozen=True)
class ClickHouseState:
    """Where ClickHouse answers and whether this call started it."""

    state: str  # started | running | reused | remote | external | stopped | not running
    endpoint: Endpoint
    http_port: int | None
    pid: int | None = None
    version: str | None = None
    config: Path | None = None
    log: Path | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form for the CLI."""
        return {
            "state": self.state,
            "host": self.endpoint.host,
            "port": self.endpoint.port,
            "http_port": self.http_port,
            "pid": self.pid,
            "version": self.version,
            "config": str(self.config) if self.config else None,
            "log": str(self.log) if self.log else None,
        }


@contextmanager
def _quiet_driver() -> Iterator[None]:
    # clickhouse-driver logs a traceback for every failed connect; the caller reports failures.
    logger = logging.getLogger("clickhouse_driver")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def server_version(endpoint: Endpoint, user: str, password: str, timeout: float = 3.0) -> str:
    """Version reported by SELECT version() over the native protocol; DevstackError if none."""
    from clickhouse_driver import Client
    from clickhouse_driver.errors import Error

    client = Client(
        host=endpoint.connect_host,
        port=endpoint.port,
        user=user,
        password=password,
        database="default",
        connect_timeout=timeout,
        send_receive_timeout=timeout,
        sync_request_timeout=timeout,
    )
    try:
        with _quiet_driver():
            rows = client.execute("SELECT version()")
    except (Error, OSError, EOFError) as exc:
        raise DevstackError(f"no ClickHouse answers at {endpoint}: {exc}") from exc
    finally:
        client.disconnect()
    return str(rows[0][0])


def find_server(binary: str | None = None) -> str | None:
    """Path of the clickhouse-server (or multi-tool clickhouse) binary, if installed."""
    if binary:
        return shutil.which(binary) or (binary if Path(binary).is_file() else None)
    found = shutil.which("clickhouse-server")
    if found:
        return found
    return str(_DEBIAN_SERVER) if _DEBIAN_SERVER.is_file() else None


def install_server() -> str:
    """Install Debian's clickhouse-server and clickhouse-client; return the server path."""
    apt_install(
        SERVER_PACKAGES,
        "; install ClickHouse or pass --clickhouse-bin / set CLICKHOUSE_SERVER_BIN",
    )
    found = find_server()
    if found is None:
        raise DevstackError("apt-get installed ClickHouse but no clickhouse-server binary is found")
    return found


def server_argv(binary: str, config: Path) -> tuple[str, ...]:
    """Command line running the server in the foreground with the given config."""
    # A current release ships one `clickhouse` multi-tool binary that needs the sub-command.
    if Path(binary).name == "clickhouse":
        return (binary, "server", f"--config-file={config}")
    return (binary, f"--config-file={config}")


def _spec(settings: Settings, layout: ClickHouseLayout, binary: str) -> processes.ProcessSpec:
    # The server opens its ports together; ensure() then checks the native one with a query.
    # (Bare TCP probes of the native port would each log "Client has not sent any data".)
    http = Endpoint(layout.listen_host, layout.http_port)
    return processes.ProcessSpec(
        name="clickhouse",
        argv=server_argv(binary, layout.config_path),
        pid_path=settings.run_dir / "pids" / "clickhouse.pid",
        log_path=layout.log_dir / "stdout.log",
        ready=http_probe(http, "/ping"),
        marker=f"--config-file={layout.config_path}",
        ready_timeout=_READY_TIMEOUT,
        stop_grace=_STOP_GRACE,
    )


def _endpoint(settings: Settings) -> Endpoint:
    return from_url(settings.clickhouse_url, DEFAULT_NATIVE_PORT)


def ensure(settings: Settings, binary: str | None = None) -> ClickHouseState:
    """Make ClickHouse answer at CLICKHOUSE_URL: reuse a running one or start the project's."""
    endpoint = _endpoint(settings)
    layout = ClickHouseLayout.from_settings(settings)
    if not endpoint.is_local:
        version = server_version(endpoint, layout.user, layout.password)
        return ClickHouseState("remote", endpoint, None, version=version)

    found = find_server(binary)
    spec = _spec(settings, layout, found or "clickhouse-server")
    pid = processes.running_pid(spec)
    if pid is None and tcp_open(endpoint):
        try:
            version = server_version(endpoint, layout.user, layout.password)
        except DevstackError as exc:
            raise DevstackError(
                f"port {endpoint.port} is in use but not by a ClickHouse we can log in to ({exc}); "
                "free it or point CLICKHOUSE_URL at another port"
            ) from exc
        return ClickHouseState("reused", endpoint, None, version=version)
    if pid is None:
        http = Endpoint(layout.listen_host, layout.http_port)
        if tcp_open(http):
            raise DevstackError(
                f"CLICKHOUSE_HTTP_PORT {layout.http_port} is in use by another process; "
                "free it or set CLICKHOUSE_HTTP_PORT"
            )
        if found is None:
            found = install_server()
            spec = _spec(settings, layout, found)
        write_config(layout)
    result = processes.start(spec)
    version = server_version(endpoint, layout.user, layout.password)
    return ClickHouseState(
        result.state,
        endpoint,
        layout.http_port,
        result.pid,
        version,
        layout.config_path,
        layout.log_dir / "err.log",
    )


def stop(settings: Settings) -> ClickHouseState:
    """Stop the ClickHouse started from the project config (never a reused one)."""
    layout = ClickHouseLayout.from_settings(settings)
    spec = _spec(settings, layout, find_server() or "clickhouse-server")
    result = processes.stop(spec)
    return ClickHouseState(
        result.state, _endpoint(settings), layout.http_port, result.pid, config=layout.config_path
    )


def status(settings: Settings) -> ClickHouseState:
    """Whether ClickHouse answers at CLICKHOUSE_URL and whether the stack runs it."""
    endpoint = _endpoint(settings)
    layout = ClickHouseLayout.from_settings(settings)
    spec = _spec(settings, layout, find_server() or "clickhouse-server")
    pid = processes.running_pid(spec) if endpoint.is_local else None
    try:
        version: str | None = server_version(endpoint, layout.user, layout.password, timeout=2.0)
    except DevstackError:
        version = None
    if pid is not None:
        state = "running"
    elif version is None:
        state = "not running"
    else:
        state = "remote" if not endpoint.is_local else "external"
    return ClickHouseState(
        state,
        endpoint,
        layout.http_port if pid else None,
        pid,
        version,
        layout.config_path if pid else None,
    )
