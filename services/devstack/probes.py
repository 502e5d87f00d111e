"""Cheap readiness checks: can we connect, does an HTTP endpoint answer 200."""

from __future__ import annotations

import http.client
import socket
from collections.abc import Callable

from services.devstack.endpoints import Endpoint

Probe = Callable[[], bool]


def tcp_open(endpoint: Endpoint, timeout: float = 1.0) -> bool:
    """Whether a TCP connection to the endpoint succeeds."""
    try:
        with socket.create_connection((endpoint.connect_host, endpoint.port), timeout=timeout):
            return True
    except OSError:
        return False


def http_get(endpoint: Endpoint, path: str, timeout: float = 2.0) -> tuple[int, bytes] | None:
    """Status and body of GET path on the endpoint, or None when it cannot be reached."""
    conn = http.client.HTTPConnection(endpoint.connect_host, endpoint.port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def tcp_probe(endpoint: Endpoint) -> Probe:
    """Probe that passes once the endpoint accepts connections."""
    return lambda: tcp_open(endpoint)


def http_probe(endpoint: Endpoint, path: str) -> Probe:
    """Probe that passes once GET path answers 200."""

    def probe() -> bool:
        answer = http_get(endpoint, path)
        return answer is not None and answer[0] == 200

    return probe
