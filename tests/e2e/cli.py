"""The `linkpulse` command run as a subprocess against the session's stores."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import orjson

from tests.conftest import ROOT


def linkpulse(*args: str) -> Any:
    """The JSON a successful `linkpulse ARGS` prints (the test fails on any other exit)."""
    done = subprocess.run(
        [sys.executable, "-m", "services.cli.main", *args],
        capture_output=True,
        cwd=ROOT,
        env=os.environ.copy(),
        timeout=60,
    )
    assert done.returncode == 0, done.stderr.decode()
    return orjson.loads(done.stdout)
