"""The system under test: the query service and the gateway as processes on the bench's ports."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from unittest import mock

from services import config
from services.config import Settings
from services.devstack import components, processes
from services.devstack.probes import http_probe
from tests.bench.progress import say

# The gateway opens channels to every service lazily; the route bench only calls the query
# service, the live bench the live service (and its flusher).
NAMES = ("query", "gateway")


def _spec(settings: Settings, name: str, env: Mapping[str, str]) -> processes.ProcessSpec:
    spec = components.spec(settings, name)
    spec = replace(spec, name=f"bench-{name}", env={**spec.env, **env})
    if name == "gateway":
        # /healthz also asks the services the bench does not start.
        spec = replace(
            spec, ready=http_probe(components.gateway_endpoint(settings), "/openapi.json")
        )
    return spec


@contextmanager
def running(
    settings: Settings, env: Mapping[str, str], names: tuple[str, ...] = NAMES
) -> Iterator[str]:
    """Start the processes (a leftover of an interrupted run is replaced), yield the gateway URL,
    stop them on the way out."""
    specs = [_spec(settings, name, env) for name in names]
    started: list[processes.ProcessSpec] = []
    try:
        for spec in specs:
            processes.stop(spec)
            state = processes.start(spec)
            started.append(spec)
            say(f"{spec.name} started (pid {state.pid}, log {spec.log_path})")
        yield components.gateway_url(settings)
    finally:
        for spec in reversed(started):
            processes.stop(spec)
            say(f"{spec.name} stopped")


def settings_of(env: Mapping[str, str]) -> Settings:
    """The settings the processes started with env read (ports, run directory, databases)."""
    with mock.patch.dict(os.environ, dict(env)):
        return config.load()


def pids(settings: Settings, env: Mapping[str, str], names: tuple[str, ...]) -> dict[str, int]:
    """Pids of the running processes among names (as `running` started them)."""
    found = {}
    for name in names:
        pid = processes.running_pid(_spec(settings, name, env))
        if pid is not None:
            found[name] = pid
    return found
