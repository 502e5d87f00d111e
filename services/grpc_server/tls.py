"""TLS credentials of gRPC servers and clients, from the GRPC_TLS_* settings (PEM files)."""

from __future__ import annotations

from pathlib import Path

import grpc

from services.config import Settings


class TlsConfigError(ValueError):
    """The GRPC_TLS_* settings are incomplete or name files that cannot be read."""


def _read(setting: str, path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise TlsConfigError(f"{setting}={path!r} cannot be read: {exc.strerror}") from exc


def server_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """Credentials a service listens with; None for plaintext (no GRPC_TLS_CERT/KEY)."""
    cert, key, client_ca = (
        settings.grpc_tls_cert,
        settings.grpc_tls_key,
        settings.grpc_tls_client_ca,
    )
    if not cert and not key:
        if client_ca:
            raise TlsConfigError("GRPC_TLS_CLIENT_CA needs GRPC_TLS_CERT and GRPC_TLS_KEY")
        return None
    if not (cert and key):
        raise TlsConfigError("GRPC_TLS_CERT and GRPC_TLS_KEY go together: set both or neither")
    pair = (_read("GRPC_TLS_KEY", key), _read("GRPC_TLS_CERT", cert))
    if not client_ca:
        return grpc.ssl_server_credentials([pair])
    return grpc.ssl_server_credentials(
        [pair],
        root_certificates=_read("GRPC_TLS_CLIENT_CA", client_ca),
        require_client_auth=True,
    )


def channel_credentials(settings: Settings) -> grpc.ChannelCredentials | None:
    """Credentials a client calls the services with; None for plaintext (no GRPC_TLS_CA)."""
    ca, cert, key = (
        settings.grpc_tls_ca,
        settings.grpc_tls_client_cert,
        settings.grpc_tls_client_key,
    )
    if not ca:
        if cert or key:
            raise TlsConfigError("GRPC_TLS_CLIENT_CERT/KEY need GRPC_TLS_CA")
        return None
    if bool(cert) != bool(key):
        raise TlsConfigError(
            "GRPC_TLS_CLIENT_CERT and GRPC_TLS_CLIENT_KEY go together: set both or neither"
        )
    return grpc.ssl_channel_credentials(
        root_certificates=_read("GRPC_TLS_CA", ca),
        private_key=_read("GRPC_TLS_CLIENT_KEY", key) if key else None,
        certificate_chain=_read("GRPC_TLS_CLIENT_CERT", cert) if cert else None,
    )
