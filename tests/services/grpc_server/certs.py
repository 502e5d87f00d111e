"""A throw-away CA (trustme) and the PEM files of a service and a client certificate."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass(frozen=True)
class Certs:
    """PEM files: the CA, a server certificate for 127.0.0.1/localhost, a client certificate."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path

    def server_env(self, mutual: bool) -> dict[str, str]:
        """The environment of a service listening over TLS (requiring client certificates
        when mutual)."""
        env = {"GRPC_TLS_CERT": str(self.server_cert), "GRPC_TLS_KEY": str(self.server_key)}
        return {**env, "GRPC_TLS_CLIENT_CA": str(self.ca)} if mutual else env

    def client_env(self, mutual: bool) -> dict[str, str]:
        """The environment of a client calling over TLS (with its certificate when mutual)."""
        env = {"GRPC_TLS_CA": str(self.ca)}
        if mutual:
            env |= {
                "GRPC_TLS_CLIENT_CERT": str(self.client_cert),
                "GRPC_TLS_CLIENT_KEY": str(self.client_key),
            }
        return env


def make_certs(directory: Path) -> Certs:
    """A new CA with one server and one client certificate, written under directory."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("linkpulse-gateway.internal")
    certs = Certs(
        ca=directory / "ca.pem",
        server_cert=directory / "server.pem",
        server_key=directory / "server.key",
        client_cert=directory / "client.pem",
        client_key=directory / "client.key",
    )
    ca.cert_pem.write_to_path(str(certs.ca))
    server.private_key_pem.write_to_path(str(certs.server_key))
    server.cert_chain_pems[0].write_to_path(str(certs.server_cert))
    client.private_key_pem.write_to_path(str(certs.client_key))
    client.cert_chain_pems[0].write_to_path(str(certs.client_cert))
    return certs
