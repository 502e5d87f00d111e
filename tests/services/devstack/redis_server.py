"""A redis-server of a test's own on a free port: start, stop, SIGKILL, start again."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

from services.devstack.endpoints import Endpoint
from services.devstack.probes import tcp_open
from tests.ports import free_port


class OwnRedis:
    """One redis-server process on a data dir that outlives its restarts."""

    def __init__(self, directory: Path, *, aof: bool = True, fsync: str = "always") -> None:
        self.directory = directory
        self.port = free_port()
        self.aof = aof
        self.fsync = fsync
        self.proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def available() -> bool:
        """Whether redis-server is installed."""
        return shutil.which("redis-server") is not None

    @property
    def url(self) -> str:
        """redis:// URL of db 0 of this server."""
        return f"redis://127.0.0.1:{self.port}/0"

    def argv(self) -> list[str]:
        """The server's command line."""
        persistence = (
            ["--appendonly", "yes", "--appendfsync", self.fsync]
            if self.aof
            else ["--appendonly", "no"]
        )
        return [
            "redis-server",
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--save",
            "",
            *persistence,
            "--dir",
            str(self.directory),
            "--logfile",
            str(self.directory / "redis.log"),
        ]

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while not tcp_open(Endpoint("127.0.0.1", self.port)):
            assert self.proc.poll() is None, (self.directory / "redis.log").read_text()
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)

    def _end(self, sig: signal.Signals) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        self.proc.wait(20)
        self.proc = None

    def stop(self) -> None:
        """Shut the server down (SIGTERM)."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        """Crash the server (SIGKILL): nothing is written on the way out."""
        self._end(signal.SIGKILL)
