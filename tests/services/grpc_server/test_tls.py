"""gRPC TLS by configuration: a TLS service answers TLS clients that trust its CA and refuses
plaintext ones; with a client CA it refuses clients without a certificate; incomplete
settings are clear errors."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import grpc
import pytest

from services.config import Settings
from services.grpc_server import tls
from services.grpc_server.channels import open_channel
from tests.services.grpc_server.certs import Certs, make_certs
from tests.services.grpc_server.copies import check, start_copy


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


def _settings(**values: str) -> Settings:
    plain = {
        name: ""
        for name in (
            "grpc_tls_cert",
            "grpc_tls_key",
            "grpc_tls_client_ca",
            "grpc_tls_ca",
            "grpc_tls_client_cert",
            "grpc_tls_client_key",
            "grpc_tls_server_name",
        )
    }
    return replace(Settings(), **{**plain, **values})


def _server(certs: Certs, mutual: bool) -> Settings:
    return _settings(
        grpc_tls_cert=str(certs.server_cert),
        grpc_tls_key=str(certs.server_key),
        grpc_tls_client_ca=str(certs.ca) if mutual else "",
    )


def _client(certs: Certs, mutual: bool, **values: str) -> Settings:
    return _settings(
        grpc_tls_ca=str(certs.ca),
        grpc_tls_client_cert=str(certs.client_cert) if mutual else "",
        grpc_tls_client_key=str(certs.client_key) if mutual else "",
        **values,
    )


async def _status(settings: Settings, address: str) -> str:
    channel = open_channel(settings, address)
    try:
        return await check(channel)
    except grpc.aio.AioRpcError as exc:
        return str(exc.code().name)
    finally:
        await channel.close()


async def test_tls_service_answers_tls_clients_only(certs: Certs) -> None:
    copy = await start_copy(tls.server_credentials(_server(certs, mutual=False)))
    other = await start_copy(tls.server_credentials(_server(certs, mutual=False)))
    try:
        assert await _status(_client(certs, mutual=False), copy.address) == "SERVING"
        # A list of copies (no authority of its own) is checked against the first host.
        both = f"{copy.address},{other.address}"
        assert await _status(_client(certs, mutual=False), both) == "SERVING"
        assert await _status(_settings(), copy.address) == "UNAVAILABLE"
        # A name the certificate does not carry is refused.
        wrong = _client(certs, mutual=False, grpc_tls_server_name="elsewhere.example")
        assert await _status(wrong, copy.address) == "UNAVAILABLE"
        # A CA that did not sign the service's certificate is refused.
        stranger = make_certs(certs.ca.parent / "stranger")
        assert await _status(_client(stranger, mutual=False), copy.address) == "UNAVAILABLE"
    finally:
        await copy.stop()
        await other.stop()


async def test_mutual_tls_refuses_clients_without_a_certificate(certs: Certs) -> None:
    copy = await start_copy(tls.server_credentials(_server(certs, mutual=True)))
    try:
        assert await _status(_client(certs, mutual=True), copy.address) == "SERVING"
        assert await _status(_client(certs, mutual=False), copy.address) == "UNAVAILABLE"
        assert await _status(_settings(), copy.address) == "UNAVAILABLE"
    finally:
        await copy.stop()


def test_incomplete_settings_are_clear_errors(certs: Certs, tmp_path: Path) -> None:
    with pytest.raises(tls.TlsConfigError, match="set both or neither"):
        tls.server_credentials(_settings(grpc_tls_cert=str(certs.server_cert)))
    with pytest.raises(tls.TlsConfigError, match="needs GRPC_TLS_CERT"):
        tls.server_credentials(_settings(grpc_tls_client_ca=str(certs.ca)))
    with pytest.raises(tls.TlsConfigError, match="need GRPC_TLS_CA"):
        tls.channel_credentials(_settings(grpc_tls_client_cert=str(certs.client_cert)))
    with pytest.raises(tls.TlsConfigError, match="cannot be read"):
        tls.channel_credentials(_settings(grpc_tls_ca=str(tmp_path / "missing.pem")))
    assert tls.server_credentials(_settings()) is None
    assert tls.channel_credentials(_settings()) is None
