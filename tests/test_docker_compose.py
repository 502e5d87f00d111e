"""docker-compose.yml is a valid Compose file, its cluster profile is wired consistently, its
healthchecks ask readiness with commands the image has, and Redis keeps an AOF (no Docker engine
here: checked against the Compose specification's typed parser)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from xml.etree import ElementTree

import pytest
import yaml
from compose_spec import PyCompose

from services.cli.main import build_parser
from services.config import METRICS_PORTS
from services.devstack.components import COMPONENTS
from services.protos import SERVICES

ROOT = Path(__file__).resolve().parent.parent
CLUSTER_DIR = ROOT / "deploy" / "clickhouse-cluster"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """The compose file with its YAML anchors and merge keys resolved."""
    value = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(value, dict)
    return value


def _env_file(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines())
    return {k.strip(): v.strip() for k, v in (p for p in pairs if len(p) == 2) if k[:1] != "#"}


def test_the_file_follows_the_compose_specification(compose: dict[str, Any]) -> None:
    parsed = PyCompose.from_json(json.dumps(compose))
    assert "gateway" in parsed.service_names()


def test_the_parser_rejects_what_compose_rejects(compose: dict[str, Any]) -> None:
    broken = json.loads(json.dumps(compose))
    broken["services"]["migrate"]["depends_on"]["clickhouse"]["condition"] = "service_happy"
    with pytest.raises(ValueError):
        PyCompose.from_json(json.dumps(broken))


def test_references_resolve(compose: dict[str, Any]) -> None:
    services = compose["services"]
    volumes = set(compose.get("volumes") or {})
    for name, service in services.items():
        for target in service.get("depends_on") or {}:
            assert target in services, f"{name} depends on unknown service {target}"
        for mount in service.get("volumes") or []:
            source = mount.split(":", 1)[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in volumes, f"{name} uses undeclared volume {source}"


def test_default_services_never_require_the_cluster_profile(compose: dict[str, Any]) -> None:
    services = compose["services"]
    cluster = {n for n, s in services.items() if "cluster" in (s.get("profiles") or [])}
    for name, service in services.items():
        if name in cluster or service.get("profiles"):
            continue
        for target, rule in (service.get("depends_on") or {}).items():
            if target in cluster:
                assert rule.get("required") is False, f"{name} requires cluster node {target}"


def test_cluster_profile_nodes_match_their_configs(compose: dict[str, Any]) -> None:
    services = compose["services"]
    nodes = {
        n: s
        for n, s in services.items()
        if "cluster" in (s.get("profiles") or []) and "clickhouse-server" in s["image"]
    }
    assert len(nodes) == 4
    topology = ElementTree.parse(CLUSTER_DIR / "cluster.xml").getroot()
    servers = topology.find("remote_servers")
    assert servers is not None
    (cluster,) = list(servers)
    shards = [
        [r.findtext("host", "") for r in shard.findall("replica")]
        for shard in cluster.findall("shard")
    ]
    assert sorted(h for shard in shards for h in shard) == sorted(nodes)
    for shard_num, hosts in enumerate(shards, start=1):
        for host in hosts:
            service = nodes[str(host)]
            assert service["hostname"] == host
            mounts = dict(m.split(":")[:2] for m in service["volumes"] if m.startswith("./"))
            macros_file = ROOT / next(s for s, t in mounts.items() if t.endswith("macros.xml"))
            macros = ElementTree.parse(macros_file).getroot().find("macros")
            assert macros is not None
            assert macros.findtext("shard") == str(shard_num)
            assert macros.findtext("replica") == host
            assert macros.findtext("cluster") == cluster.tag

    env = _env_file(ROOT / "deploy" / "cluster.env")
    assert env["CLICKHOUSE_CLUSTER"] == cluster.tag
    url = urlsplit(env["CLICKHOUSE_URL"])
    alt = parse_qs(url.query)["alt_hosts"][0].split(",")
    assert sorted([f"{url.hostname}:{url.port}", *alt]) == sorted(f"{n}:9000" for n in nodes)
    keeper = topology.find("zookeeper/node/host")
    assert keeper is not None and keeper.text in services


def test_app_services_take_the_cluster_from_the_environment(compose: dict[str, Any]) -> None:
    env = compose["services"]["query"]["environment"]
    assert re.fullmatch(r"\$\{CLICKHOUSE_URL:-clickhouse://.+\}", env["CLICKHOUSE_URL"])
    assert env["CLICKHOUSE_CLUSTER"] == "${CLICKHOUSE_CLUSTER:-}"


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def test_images_are_pinned(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        image = service["image"]
        if "build" in service:
            continue
        tag = image.rsplit(":", 1)[1] if ":" in image else ""
        assert re.fullmatch(r"v?\d+(\.\d+)*", tag), f"{name} runs {image}: pin a version"


def test_processes_healthchecks_ask_readiness_with_the_cli(compose: dict[str, Any]) -> None:
    services = compose["services"]
    parser = build_parser()
    for name in COMPONENTS:
        test = services[name]["healthcheck"]["test"]
        assert test[:3] == ["CMD", "linkpulse", "probe"], f"{name}: {test}"
        args = parser.parse_args(test[2:])
        env = services[name]["environment"]
        if name in SERVICES:
            listen = env[f"{name.upper()}_GRPC_ADDR"]
            assert (args.action, args.address) == ("grpc", f"127.0.0.1:{_port(listen)}")
        elif name == "gateway":
            assert args.url == f"http://127.0.0.1:{env['GATEWAY_PORT']}/readyz"
        else:
            port = env.get(f"{name.upper()}_METRICS_PORT") or METRICS_PORTS[name]
            assert args.url == f"http://127.0.0.1:{port}/metrics"


def test_grpc_ports_are_published(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in SERVICES:
        port = _port(services[name]["environment"][f"{name.upper()}_GRPC_ADDR"])
        assert f"{port}:{port}" in services[name]["ports"], name
        assert services["gateway"]["depends_on"][name]["condition"] == "service_healthy"


def test_redis_keeps_an_append_only_file_in_a_volume(compose: dict[str, Any]) -> None:
    redis = compose["services"]["redis"]
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--appendfsync") + 1] in ("always", "everysec")
    assert any(m.endswith(":/data") and not m.startswith(".") for m in redis["volumes"])
