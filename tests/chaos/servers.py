"""Store servers the chaos suite owns: a throw-away PostgreSQL cluster and a Redis server."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.ports import free_port

_WAIT_SECONDS = 30.0


def _as_postgres(argv: list[str]) -> list[str]:
    """argv run as the postgres user when we are root (initdb refuses root)."""
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", "postgres", "--", *argv]


def postgres_bin() -> Path | None:
    """Directory of Debian's newest PostgreSQL server binaries, if installed."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: p.parts[-3])
    return found[-1].parent if found else None


def wait_port(port: int, up: bool, seconds: float = _WAIT_SECONDS) -> None:
    """Wait until 127.0.0.1:port accepts connections (up) or refuses them (not up)."""
    import socket

    deadline = time.monotonic() + seconds
    while True:
        with socket.socket() as sock:
            sock.settimeout(0.5)
            is_up = sock.connect_ex(("127.0.0.1", port)) == 0
        if is_up == up:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"port {port} still {'closed' if up else 'open'} after {seconds}s")
        time.sleep(0.1)


@dataclass
class PostgresCluster:
    """A PostgreSQL cluster in a temp dir on a free port, started and stopped with pg_ctl."""

    root: Path
    port: int = field(default_factory=free_port)

    @property
    def data(self) -> Path:
        """The cluster's data directory."""
        return self.root / "data"

    def url(self, database: str) -> str:
        """Connection URL of one database of the cluster."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _pg_ctl(self, *args: str) -> None:
        binary = postgres_bin()
        assert binary is not None, "PostgreSQL server binaries are not installed"
        subprocess.run(
            _as_postgres([str(binary / "pg_ctl"), "-D", str(self.data), *args]),
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def create(self) -> None:
        """initdb a new cluster (trust authentication on loopback)."""
        binary = postgres_bin()
        assert binary is not None, "PostgreSQL server binaries are not installed"
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.root, user.pw_uid, user.pw_gid)
        subprocess.run(
            _as_postgres(
                [str(binary / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust"]
            ),
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def start(self) -> None:
        """Start the cluster and wait until it accepts connections."""
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._pg_ctl("-l", str(self.root / "server.log"), "-o", options, "-w", "start")
        wait_port(self.port, up=True)

    def stop(self, mode: str = "fast") -> None:
        """Stop the cluster (mode fast, or immediate: no shutdown checkpoint, like a crash)."""
        self._pg_ctl("-m", mode, "-w", "stop")
        wait_port(self.port, up=False)

    def destroy(self) -> None:
        """Stop the cluster if it runs and remove its files."""
        try:
            self.stop("immediate")
        except (subprocess.CalledProcessError, TimeoutError):
            pass
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class RedisServer:
    """A redis-server writing every command to its append-only file before it answers."""

    root: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Connection URL of db 0."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start (or restart, on the same port and files) and wait until it answers."""
        self.root.mkdir(parents=True, exist_ok=True)
        argv = [
            shutil.which("redis-server") or "redis-server",
            "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.root),
            "--appendonly", "yes", "--appendfsync", "always", "--save", "",
            "--logfile", str(self.root / "redis.log"),
        ]  # fmt: skip
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, start_new_session=True)
        wait_port(self.port, up=True)

    def signal(self, sig: signal.Signals) -> None:
        """Send sig to the server."""
        assert self.proc is not None
        self.proc.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL the server and wait until it is gone."""
        self.signal(signal.SIGKILL)
        assert self.proc is not None
        self.proc.wait(10)
        wait_port(self.port, up=False)

    def shutdown(self) -> None:
        """Stop the server cleanly (SIGTERM: it syncs its files and exits)."""
        self.signal(signal.SIGTERM)
        assert self.proc is not None
        self.proc.wait(30)
        wait_port(self.port, up=False)

    def destroy(self) -> None:
        """Stop the server if it runs and remove its files."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.kill()
        shutil.rmtree(self.root, ignore_errors=True)
