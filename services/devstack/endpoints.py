"""Host/port pairs parsed from the settings' URLs and addresses."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

_LOOPBACK_NAMES = frozenset({"", "localhost", "0.0.0.0", "::", "::1", "ip6-localhost"})
# Wildcard listen addresses are reached through the loopback address of the same family.
_CONNECT_FOR_WILDCARD = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}


@dataclass(frozen=True)
class Endpoint:
    """A TCP endpoint as configured (host may be a wildcard listen address)."""

    host: str
    port: int

    @property
    def connect_host(self) -> str:
        """Host to connect to: loopback in place of a wildcard address."""
        return _CONNECT_FOR_WILDCARD.get(self.host, self.host)

    @property
    def is_local(self) -> bool:
        """Whether the endpoint is on this machine, so the dev stack may start it."""
        return is_local_host(self.host)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def is_local_host(host: str) -> bool:
    """Whether host names this machine (loopback, wildcard or our own host name)."""
    host = host.strip("[]").lower()
    if host in _LOOPBACK_NAMES or host.startswith("127."):
        return True
    return host in {socket.gethostname().lower(), socket.getfqdn().lower()}


def from_url(url: str, default_port: int) -> Endpoint:
    """Endpoint of a URL such as postgresql://user@host:5432/db."""
    parts = urlsplit(url)
    return Endpoint(parts.hostname or "127.0.0.1", parts.port or default_port)


def from_addr(addr: str) -> Endpoint:
    """Endpoint of a host:port address ([v6]:port accepted)."""
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"not a host:port address: {addr!r}")
    return Endpoint(host.strip("[]"), int(port))
