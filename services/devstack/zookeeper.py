"""The dev cluster's ZooKeeper: Debian's package, one standalone server under the run dir."""

from __future__ import annotations

import os
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.devstack import processes
from services.devstack.apt import apt_install
from services.devstack.endpoints import Endpoint
from services.devstack.failures import DevstackError
from services.devstack.probes import Probe, tcp_open

PACKAGE = "zookeeper"
DEFAULT_PORT = 12181
PORT_VARIABLE = "ZOOKEEPER_PORT"
MAIN_CLASS = "org.apache.zookeeper.server.ZooKeeperServerMain"
# Debian's zookeeper.jar lists its dependencies in its manifest's Class-Path; slf4j-simple
# (a dependency of the package's slf4j) sends the server's log lines to the process log.
_JARS = ("/usr/share/java/zookeeper.jar",)
_LOG_JARS = ("/usr/share/java/slf4j-simple.jar",)
_READY_TIMEOUT = 60.0
_STOP_GRACE = 15.0

_CONFIG = """\
# Rendered by `linkpulse stack`; edits are overwritten on the next start.
tickTime=2000
initLimit=10
syncLimit=5
dataDir={data_dir}
clientPort={port}
clientPortAddress={host}
maxClientCnxns=0
admin.enableServer=false
4lw.commands.whitelist=ruok,srvr
autopurge.snapRetainCount=3
autopurge.purgeInterval=1
"""


@dataclass(frozen=True)
class ZooKeeperLayout:
    """Port and paths of the dev-cluster ZooKeeper."""

    root: Path
    port: int = DEFAULT_PORT
    host: str = "127.0.0.1"

    @classmethod
    def under(cls, cluster_dir: Path, port: int | None = None) -> ZooKeeperLayout:
        """Layout in <cluster_dir>/zookeeper on port (default: $ZOOKEEPER_PORT, else 12181)."""
        if port is None:
            port = int(os.environ.get(PORT_VARIABLE) or DEFAULT_PORT)
        return cls(root=cluster_dir / "zookeeper", port=port)

    @property
    def endpoint(self) -> Endpoint:
        """Where clients connect."""
        return Endpoint(self.host, self.port)

    @property
    def config_path(self) -> Path:
        """The rendered zoo.cfg."""
        return self.root / "zoo.cfg"

    @property
    def data_dir(self) -> Path:
        """Snapshots and transaction logs."""
        return self.root / "data"

    @property
    def log_path(self) -> Path:
        """The server's stdout and stderr."""
        return self.root / "zookeeper.log"

    @property
    def pid_path(self) -> Path:
        """Pid file of the server the stack started."""
        return self.root / "zookeeper.pid"


@dataclass(frozen=True)
class ZooKeeperState:
    """Whether ZooKeeper answers and whether this call started it."""

    state: str  # started | running | reused | stopped | not running
    endpoint: Endpoint
    pid: int | None = None
    mode: str | None = None
    log: Path | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form for the CLI."""
        return {
            "state": self.state,
            "address": str(self.endpoint),
            "pid": self.pid,
            "mode": self.mode,
            "log": str(self.log) if self.log else None,
        }


def render_config(layout: ZooKeeperLayout) -> str:
    """zoo.cfg text for the layout."""
    return _CONFIG.format(data_dir=layout.data_dir.resolve(), port=layout.port, host=layout.host)


def write_config(layout: ZooKeeperLayout) -> Path:
    """Create the data directory and write zoo.cfg; return its path."""
    layout.data_dir.mkdir(parents=True, exist_ok=True)
    layout.config_path.write_text(render_config(layout))
    return layout.config_path


def four_letter_word(endpoint: Endpoint, word: str, timeout: float = 2.0) -> str | None:
    """Answer of a ZooKeeper four-letter command (ruok, srvr), or None when none comes."""
    try:
        with socket.create_connection((endpoint.connect_host, endpoint.port), timeout) as sock:
            sock.sendall(word.encode())
            chunks = []
            while chunk := sock.recv(4096):
                chunks.append(chunk)
    except OSError:
        return None
    return b"".join(chunks).decode(errors="replace")


def serving_probe(endpoint: Endpoint) -> Probe:
    """Probe that passes once the server serves requests (`srvr` reports its mode; before
    that it answers `ruok` already but refuses sessions)."""
    return lambda: server_mode(endpoint) is not None


def server_mode(endpoint: Endpoint) -> str | None:
    """`standalone`, `leader` or `follower` from `srvr`, None when it does not answer."""
    answer = four_letter_word(endpoint, "srvr")
    for line in (answer or "").splitlines():
        if line.startswith("Mode:"):
            return line.split(":", 1)[1].strip()
    return None


def find_java() -> str | None:
    """Path of the java binary, if installed."""
    return shutil.which("java")


def installed() -> bool:
    """Whether Debian's zookeeper package (and java) are present."""
    return find_java() is not None and all(Path(jar).is_file() for jar in _JARS)


def install() -> None:
    """Install Debian's zookeeper package (it pulls in a Java runtime)."""
    apt_install((PACKAGE,))
    if not installed():
        raise DevstackError("apt-get installed zookeeper but java or zookeeper.jar is missing")


def classpath() -> str:
    """The server's classpath: zookeeper.jar, a logger binding if present, the config dir."""
    jars = [*_JARS, *(jar for jar in _LOG_JARS if Path(jar).is_file())]
    return ":".join(jars)


def _spec(layout: ZooKeeperLayout, java: str) -> processes.ProcessSpec:
    argv = (
        java,
        "-Xmx256m",
        "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
        "-Dzookeeper.jmx.log4j.disable=true",
        "-cp",
        classpath(),
        MAIN_CLASS,
        str(layout.config_path),
    )
    return processes.ProcessSpec(
        name="zookeeper",
        argv=argv,
        pid_path=layout.pid_path,
        log_path=layout.log_path,
        ready=serving_probe(layout.endpoint),
        marker=f"{MAIN_CLASS} {layout.config_path}",
        ready_timeout=_READY_TIMEOUT,
        stop_grace=_STOP_GRACE,
    )


def ensure(layout: ZooKeeperLayout) -> ZooKeeperState:
    """Make ZooKeeper answer on the layout's port: reuse a running one or start ours."""
    spec = _spec(layout, find_java() or "java")
    pid = processes.running_pid(spec)
    if pid is None and tcp_open(layout.endpoint):
        mode = server_mode(layout.endpoint)
        if mode is None:
            raise DevstackError(
                f"port {layout.port} is in use but not by a ZooKeeper; free it or set "
                f"{PORT_VARIABLE}"
            )
        return ZooKeeperState("reused", layout.endpoint, None, mode)
    if pid is None:
        if not installed():
            install()
            spec = _spec(layout, find_java() or "java")
        write_config(layout)
    result = processes.start(spec)
    return ZooKeeperState(
        result.state, layout.endpoint, result.pid, server_mode(layout.endpoint), layout.log_path
    )


def stop(layout: ZooKeeperLayout) -> ZooKeeperState:
    """Stop the ZooKeeper the stack started (never a reused one)."""
    result = processes.stop(_spec(layout, find_java() or "java"))
    return ZooKeeperState(result.state, layout.endpoint, result.pid, log=layout.log_path)


def status(layout: ZooKeeperLayout) -> ZooKeeperState:
    """Whether ZooKeeper answers and whether the stack runs it."""
    pid = processes.running_pid(_spec(layout, find_java() or "java"))
    mode = server_mode(layout.endpoint)
    if pid is not None:
        state = "running"
    else:
        state = "not running" if mode is None else "external"
    return ZooKeeperState(state, layout.endpoint, pid, mode, layout.log_path if pid else None)
