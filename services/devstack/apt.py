"""Debian packages the dev stack needs: installed with apt-get, as root or through sudo."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence

from services.devstack.failures import DevstackError


def _privileged(argv: list[str], what: str) -> list[str]:
    if os.geteuid() == 0:
        return argv
    if shutil.which("sudo"):
        return ["sudo", "-n", *argv]
    raise DevstackError(f"{what} is not installed; run as root: {' '.join(argv)}")


def _apt(what: str, *args: str) -> int:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    argv = _privileged(["apt-get", *args], what)
    print(f"linkpulse stack: {' '.join(argv)}", file=sys.stderr, flush=True)
    # apt's chatter goes to stderr so the command's stdout stays machine-readable.
    return subprocess.call(argv, stdout=sys.stderr, env=env)


def apt_install(packages: Sequence[str], hint: str = "") -> None:
    """apt-get install packages (after an apt-get update if the first try fails)."""
    what = " ".join(packages)
    if not shutil.which("apt-get"):
        raise DevstackError(f"{what} is not installed and apt-get is unavailable{hint}")
    install = ("install", "-y", "--no-install-recommends", *packages)
    if _apt(what, *install) != 0 and (_apt(what, "update") != 0 or _apt(what, *install) != 0):
        raise DevstackError(f"apt-get install {what} failed (see above)")
