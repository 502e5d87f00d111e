"""`linkpulse probe grpc|http`: one health check of a running process (container healthchecks)."""

from __future__ import annotations

import argparse
import urllib.error
import urllib.request
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services import config
from services.cli.output import print_json
from services.grpc_server.channels import open_channel

# Exit status when the answer is not healthy or none came (a container healthcheck's "unhealthy").
UNHEALTHY_EXIT = 1


async def grpc_health_status(address: str, service: str, deadline: float) -> str:
    """The serving status a gRPC server reports for service ("" = the whole server), or the
    gRPC status code name when the check itself failed (UNAVAILABLE, DEADLINE_EXCEEDED, …)."""
    channel = open_channel(config.load(), address)
    try:
        stub = health_pb2_grpc.HealthStub(channel)
        request = health_pb2.HealthCheckRequest(service=service)
        reply = await stub.Check(request, timeout=deadline)
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))
    except grpc.aio.AioRpcError as exc:
        return str(exc.code().name)
    finally:
        await channel.close(grace=None)


def http_status(url: str, timeout: float) -> tuple[int | None, str | None]:
    """The HTTP status a GET of url answers, or None and the reason no answer came."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - operator's URL
            return int(response.status), None
    except urllib.error.HTTPError as exc:
        return int(exc.code), None
    except (urllib.error.URLError, OSError) as exc:
        return None, str(getattr(exc, "reason", exc))


def _verdict(result: dict[str, Any], healthy: bool) -> dict[str, Any]:
    """The result to print when healthy; printed and exit UNHEALTHY_EXIT otherwise."""
    if healthy:
        return result
    print_json(result)
    raise SystemExit(UNHEALTHY_EXIT)


async def cmd_probe_grpc(args: argparse.Namespace) -> dict[str, Any]:
    """Check a gRPC server's health service; healthy only when it answers SERVING."""
    status = await grpc_health_status(args.address, args.service, args.timeout)
    result = {"address": args.address, "service": args.service, "status": status}
    return _verdict(result, status == "SERVING")


def cmd_probe_http(args: argparse.Namespace) -> dict[str, Any]:
    """GET a URL (the gateway's /readyz, a metrics endpoint); healthy only on a 2xx answer."""
    status, error = http_status(args.url, args.timeout)
    result: dict[str, Any] = {"url": args.url, "status": status}
    if error is not None:
        result["error"] = error
    return _verdict(result, status is not None and 200 <= status < 300)


def register(sub: argparse._SubParsersAction) -> None:
    """Add `probe grpc` and `probe http`."""
    probe = sub.add_parser(
        "probe", help="check once whether a running process is healthy (exit 0) or not (exit 1)"
    ).add_subparsers(dest="action", required=True)
    p = probe.add_parser("grpc", help="ask a gRPC server's health service (grpc.health.v1)")
    p.add_argument("address", help="host:port of the server, e.g. 127.0.0.1:50051")
    p.add_argument(
        "--service", default="", help="service name to ask about (default: the whole server)"
    )
    p.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for the answer")
    p.set_defaults(handler=cmd_probe_grpc)
    p = probe.add_parser("http", help="GET a URL, e.g. the gateway's /readyz")
    p.add_argument("url")
    p.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for the answer")
    p.set_defaults(handler=cmd_probe_http)
