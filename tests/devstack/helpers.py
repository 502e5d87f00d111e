"""Free loopback ports and throw-away settings for dev-stack tests."""

from __future__ import annotations

import socket
from pathlib import Path

from services.config import Settings


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def isolated_settings(run_dir: Path, **overrides: object) -> Settings:
    """Settings on free ports with everything the stack writes under run_dir."""
    values: dict[str, object] = {
        "clickhouse_url": f"clickhouse://default@127.0.0.1:{free_port()}/linkpulse",
        "clickhouse_http_port": free_port(),
        "query_addr": f"127.0.0.1:{free_port()}",
        "live_addr": f"127.0.0.1:{free_port()}",
        "export_addr": f"127.0.0.1:{free_port()}",
        "audit_addr": f"127.0.0.1:{free_port()}",
        "gateway_host": "127.0.0.1",
        "gateway_port": free_port(),
        "run_dir": run_dir,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]
