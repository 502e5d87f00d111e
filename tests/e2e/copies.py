"""Extra copies of the system's processes that a test starts on settings of its own."""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass, field, replace

from services.config import Settings
from services.devstack import components, processes
from services.devstack.pidfiles import live_pid
from tests.services.devstack.helpers import process_env


@dataclass
class Copies:
    """Processes started by one test (stopped at its end); they use settings' stores."""

    settings: Settings
    secret: str  # the suite's signing secret: these processes are of its deployment
    specs: list[processes.ProcessSpec] = field(default_factory=list)

    def start(
        self, name: str, label: str, listen: str | None = None, **env: str
    ) -> processes.ProcessSpec:
        """Start `linkpulse serve name` as label, a gRPC service listening on listen (the
        readiness probe's address) with extra env."""
        probed = self.settings
        if listen is not None:
            probed = replace(self.settings, **{f"{name}_addr": listen})
            env = {"GRPC_LISTEN_ADDR": listen, **env}
        spec = components.serve_spec(
            self.settings,
            name,
            label,
            components.probe(probed, name),
            process_env(self.settings, SIGNING_KEY=self.secret, **env),
        )
        processes.start(spec)
        self.specs.append(spec)
        return spec

    def kill(self, spec: processes.ProcessSpec) -> None:
        """Crash one process (SIGKILL)."""
        pid = live_pid(spec.pid_path, spec.identity)
        assert pid is not None, f"{spec.name} is not running"
        os.kill(pid, signal.SIGKILL)

    def stop_all(self) -> None:
        """Stop every process started (those killed are gone already)."""
        for spec in reversed(self.specs):
            processes.stop(spec)
