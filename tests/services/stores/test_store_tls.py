"""TLS to the stores by configuration alone: throw-away Redis, PostgreSQL and ClickHouse servers
that accept only TLS, reached through the URLs' own options (REDIS_URL `rediss://` with
`ssl_ca_certs`, DATABASE_URL `sslmode`/`sslrootcert`, CLICKHOUSE_URL `secure`/`ca_certs`/
`verify`), and refused without the CA."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import asyncpg
import pytest
from arq.connections import create_pool as arq_pool

from services.config import Settings
from services.devstack import clickhouse_server
from services.devstack.clickhouse_config import ClickHouseLayout, render_config
from services.errors import StoreUnavailable
from services.stores.clickhouse import ClickHouse, ClickHouseTarget
from services.stores.postgres import create_pool
from services.stores.redisclient import create_redis
from tests.chaos.servers import PostgresCluster, postgres_bin, wait_port
from tests.ports import free_port
from tests.services.grpc_server.certs import Certs, make_certs
from workers.main import worker_settings


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("store-certs"))


@dataclass
class Server:
    """A server process started by a test."""

    port: int
    proc: subprocess.Popen[bytes]

    def stop(self) -> None:
        """Stop it (SIGTERM, then SIGKILL)."""
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(20)


# -- Redis -------------------------------------------------------------------------------------


@pytest.fixture
def tls_redis(certs: Certs, tmp_path: Path) -> Iterator[Server]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    argv = ["redis-server", "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1"]
    argv += ["--tls-cert-file", str(certs.server_cert), "--tls-key-file", str(certs.server_key)]
    argv += ["--tls-ca-cert-file", str(certs.ca), "--tls-auth-clients", "no"]
    argv += ["--save", "", "--appendonly", "no", "--dir", str(tmp_path)]
    server = Server(port, subprocess.Popen(argv, stdout=subprocess.DEVNULL))
    wait_port(port, up=True)
    yield server
    server.stop()


async def test_redis_over_tls_from_the_url(tls_redis: Server, certs: Certs) -> None:
    url = f"rediss://127.0.0.1:{tls_redis.port}/0?ssl_ca_certs={certs.ca}"
    client = create_redis(url)
    try:
        assert await client.ping()
    finally:
        await client.aclose()
    # The arq worker's connection takes the same options.
    arq = await arq_pool(worker_settings(replace(Settings(), redis_url=url))["redis_settings"])
    try:
        assert await arq.ping()
    finally:
        await arq.aclose()
    untrusted = create_redis(f"rediss://127.0.0.1:{tls_redis.port}/0", connect_timeout=2)
    try:
        with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED"):
            await untrusted.ping()
    finally:
        await untrusted.aclose()


# -- PostgreSQL --------------------------------------------------------------------------------


@pytest.fixture
def tls_postgres(certs: Certs) -> Iterator[PostgresCluster]:
    if postgres_bin() is None:
        pytest.skip("PostgreSQL server binaries are not installed")
    # Under /tmp itself: the postgres user must reach it (pytest's tmp_path is root's alone).
    cluster = PostgresCluster(Path(tempfile.mkdtemp(prefix="linkpulse-tls-pg-")))
    cluster.create()
    for source, name in ((certs.server_cert, "server.crt"), (certs.server_key, "server.key")):
        target = cluster.data / name
        shutil.copy(source, target)
        target.chmod(0o600)
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(target, user.pw_uid, user.pw_gid)
    with (cluster.data / "postgresql.conf").open("a") as conf:
        conf.write("\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n")
    # TCP only over TLS.
    (cluster.data / "pg_hba.conf").write_text(
        "local all all trust\nhostssl all all 127.0.0.1/32 trust\n"
    )
    cluster.start()
    yield cluster
    cluster.destroy()


async def test_postgres_over_tls_from_the_url(tls_postgres: PostgresCluster, certs: Certs) -> None:
    base = tls_postgres.url("postgres")
    pool = await create_pool(f"{base}?sslmode=verify-full&sslrootcert={certs.ca}", max_size=1)
    try:
        assert await pool.fetchval("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
    finally:
        await pool.close()
    with pytest.raises((asyncpg.PostgresError, OSError)):
        await create_pool(f"{base}?sslmode=disable", max_size=1)
    stranger = make_certs(certs.ca.parent / "stranger-pg")
    with pytest.raises((asyncpg.PostgresError, OSError)):
        await create_pool(f"{base}?sslmode=verify-full&sslrootcert={stranger.ca}", max_size=1)


# -- ClickHouse --------------------------------------------------------------------------------

_OPENSSL = """\
  <tcp_port_secure>{port}</tcp_port_secure>
  <openSSL>
    <server>
      <certificateFile>{cert}</certificateFile>
      <privateKeyFile>{key}</privateKeyFile>
      <verificationMode>none</verificationMode>
      <loadDefaultCAFile>false</loadDefaultCAFile>
      <disableProtocols>sslv2,sslv3</disableProtocols>
      <preferServerCiphers>true</preferServerCiphers>
    </server>
  </openSSL>
</yandex>
"""


@pytest.fixture
def tls_clickhouse(certs: Certs, tmp_path: Path) -> Iterator[Server]:
    binary = clickhouse_server.find_server()
    if binary is None:
        pytest.skip("clickhouse-server is not installed")
    layout = ClickHouseLayout(tmp_path / "ch", tcp_port=free_port(), http_port=free_port())
    for directory in (layout.data_dir, layout.tmp_dir, layout.log_dir, layout.user_files_dir):
        directory.mkdir(parents=True, exist_ok=True)
    secure = free_port()
    config = render_config(layout).replace(
        "</yandex>\n",
        _OPENSSL.format(port=secure, cert=certs.server_cert, key=certs.server_key),
    )
    layout.config_path.write_text(config)
    argv = clickhouse_server.server_argv(binary, layout.config_path)
    server = Server(secure, subprocess.Popen(argv, stdout=subprocess.DEVNULL))
    try:
        wait_port(secure, up=True, seconds=60)
    except TimeoutError:
        server.stop()
        raise AssertionError((layout.log_dir / "err.log").read_text()) from None
    yield server
    server.stop()


def test_clickhouse_url_tls_options() -> None:
    target = ClickHouseTarget.from_url(
        "clickhouse://u:p@ch.internal:9440/db?secure=1&ca_certs=/etc/ca.pem&verify=true"
    )
    assert target.tls == (("ca_certs", "/etc/ca.pem"), ("secure", True), ("verify", True))
    connection = target.client().connection
    assert connection.secure_socket and connection.verify_cert
    assert connection.ssl_options["ca_certs"] == "/etc/ca.pem"
    assert ClickHouseTarget.from_url("clickhouse://default@127.0.0.1:9000/db").tls == ()


async def test_clickhouse_over_tls_from_the_url(tls_clickhouse: Server, certs: Certs) -> None:
    base = f"clickhouse://default@127.0.0.1:{tls_clickhouse.port}/default"
    store = ClickHouse.from_url(f"{base}?secure=1&verify=1&ca_certs={certs.ca}", pool_size=1)
    try:
        assert await store.fetch("SELECT 1") == [(1,)]
    finally:
        store.close()
    stranger = make_certs(certs.ca.parent / "stranger-ch")
    untrusted = ClickHouse.from_url(f"{base}?secure=1&ca_certs={stranger.ca}", pool_size=1)
    try:
        with pytest.raises(StoreUnavailable):
            await untrusted.fetch("SELECT 1")
    finally:
        untrusted.close()
