"""`linkpulse serve NAME`: run one process of the system in the foreground."""

from __future__ import annotations

import argparse
import asyncio

from services import config
from services.devstack.components import COMPONENTS
from services.telemetry import exposition, logs, tracing


def cmd_serve(args: argparse.Namespace) -> None:
    """Run a gRPC service, the gateway, the arq worker or the ingestion flusher until SIGTERM."""
    settings = config.load()
    logs.configure(args.name, settings, args.log_level)
    tracing.configure(args.name, settings)
    if args.name != "gateway":  # the gateway serves /metrics on its own port
        exposition.serve(settings, args.name)
    if args.name == "gateway":
        from gateway.server import serve

        serve(settings)
    elif args.name == "worker":
        from workers.main import run_worker

        run_worker(settings)
    elif args.name == "flusher":
        from workers.flusher import run as run_flusher

        asyncio.run(run_flusher(settings))
    else:
        from services.grpc_server.process import run

        asyncio.run(run(args.name, settings))


def register(sub: argparse._SubParsersAction) -> None:
    """Add `serve`."""
    p = sub.add_parser(
        "serve", help="run one process (a gRPC service, the gateway, the worker or the flusher)"
    )
    p.add_argument("name", choices=COMPONENTS)
    p.add_argument("--log-level", default=None, help="overrides LOG_LEVEL (default INFO)")
    p.set_defaults(handler=cmd_serve)
