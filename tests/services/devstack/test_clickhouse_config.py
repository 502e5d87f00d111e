"""The rendered ClickHouse config: ports, listen address, users and paths under the run dir."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from services.devstack.clickhouse_config import ClickHouseLayout, render_config, write_config
from tests.services.devstack.helpers import isolated_settings


def _layout(tmp_path: Path, url: str, http_port: int = 18124) -> ClickHouseLayout:
    settings = isolated_settings(
        tmp_path / "run", clickhouse_url=url, clickhouse_http_port=http_port
    )
    return ClickHouseLayout.from_settings(settings)


def test_layout_takes_ports_from_url_and_http_setting(tmp_path: Path) -> None:
    layout = _layout(tmp_path, "clickhouse://default@127.0.0.1:19123/linkpulse", 18777)
    assert (layout.tcp_port, layout.http_port) == (19123, 18777)
    assert layout.root == tmp_path / "run" / "clickhouse"
    assert layout.config_path == tmp_path / "run" / "clickhouse" / "config.xml"
    assert layout.listen_host == "127.0.0.1"


def test_layout_defaults_to_native_port_9000(tmp_path: Path) -> None:
    assert _layout(tmp_path, "clickhouse://127.0.0.1/linkpulse").tcp_port == 9000


def test_rendered_config_puts_ports_and_paths_in_place(tmp_path: Path) -> None:
    layout = _layout(tmp_path, "clickhouse://default@127.0.0.1:19123/linkpulse", 18777)
    root = ET.fromstring(render_config(layout))
    ch = str((tmp_path / "run" / "clickhouse").resolve())
    assert root.tag == "yandex"
    assert root.findtext("tcp_port") == "19123"
    assert root.findtext("http_port") == "18777"
    assert root.findtext("listen_host") == "127.0.0.1"
    assert root.findtext("timezone") == "UTC"
    assert root.findtext("path") == f"{ch}/data/"
    assert root.findtext("tmp_path") == f"{ch}/tmp/"
    assert root.findtext("user_files_path") == f"{ch}/user_files/"
    assert root.findtext("logger/log") == f"{ch}/logs/server.log"
    assert root.findtext("logger/errorlog") == f"{ch}/logs/err.log"
    # Nothing else listens: no interserver, MySQL or PostgreSQL protocol ports.
    assert [el.tag for el in root if el.tag.endswith("_port")] == ["tcp_port", "http_port"]


def test_default_user_is_passwordless_on_loopback(tmp_path: Path) -> None:
    root = ET.fromstring(render_config(_layout(tmp_path, "clickhouse://127.0.0.1:19123/x")))
    users = root.find("users")
    assert users is not None and [user.tag for user in users] == ["default"]
    assert root.findtext("users/default/password") == ""
    assert [ip.text for ip in root.findall("users/default/networks/ip")] == ["127.0.0.1", "::1"]


def test_url_user_and_password_are_created(tmp_path: Path) -> None:
    layout = _layout(tmp_path, "clickhouse://lp:s%3Acret%3C@127.0.0.1:19123/x")
    root = ET.fromstring(render_config(layout))
    assert root.findtext("users/default/password") == ""
    assert root.findtext("users/lp/password") == "s:cret<"


def test_write_config_creates_the_directories(tmp_path: Path) -> None:
    layout = _layout(tmp_path, "clickhouse://127.0.0.1:19123/x")
    path = write_config(layout)
    assert path == layout.config_path and path.read_text() == render_config(layout)
    for name in ("data", "tmp", "logs", "user_files"):
        assert (layout.root / name).is_dir()
