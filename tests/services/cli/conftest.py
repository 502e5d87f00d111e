"""Fixtures of the CLI tests: throwaway PostgreSQL and ClickHouse databases, and the command run
in-process (main) or as the installed console script, with its exit status, stdout and stderr."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import subprocess
import sys
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import orjson
import pytest

from services.cli.main import main
from services.config import Settings
from services.devstack import clickhouse_server as devstack_clickhouse
from tests.databases import drop_databases

T = TypeVar("T")
SCRIPT = Path(sys.executable).with_name("linkpulse")


def in_thread(work: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on its own loop in another thread (the test session's loop stays as is)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, work).result()


@dataclass
class Result:
    """What one run of the command did."""

    status: int
    out: str
    err: str

    @property
    def json(self) -> Any:
        """stdout as JSON (asserting it succeeded)."""
        assert self.status == 0, self.err
        return orjson.loads(self.out)

    @property
    def error(self) -> dict[str, Any]:
        """The `error` object printed on stderr (asserting nothing went to stdout)."""
        assert self.out == "", self.out
        lines = self.err.strip().splitlines()
        assert len(lines) == 1, self.err
        body = orjson.loads(lines[0])
        assert set(body) == {"error"}
        return dict(body["error"])


@dataclass
class Cli:
    """The `linkpulse` command on this module's databases."""

    env: dict[str, str]
    pg_url: str

    def __call__(self, *args: str) -> Result:
        """Run main(args) in this process."""
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            with ThreadPoolExecutor(1) as pool:
                status = pool.submit(main, list(args)).result()
        return Result(status, out.getvalue(), err.getvalue())

    def process(self, *args: str, **env: str) -> Result:
        """Run the installed console script with args (env overriding the databases')."""
        done = subprocess.run(
            [str(SCRIPT), *args],
            capture_output=True,
            env={**os.environ, **self.env, **env},
            timeout=120,
            text=True,
        )
        return Result(done.returncode, done.stdout, done.stderr)

    def sql(self, query: str, *args: Any) -> list[asyncpg.Record]:
        """Rows of one statement on the module's PostgreSQL database."""

        async def run() -> list[asyncpg.Record]:
            conn = await asyncpg.connect(self.pg_url)
            try:
                return list(await conn.fetch(query, *args))
            finally:
                await conn.close()

        return in_thread(run())

    def workspace(self, **options: str) -> int:
        """The id of a new workspace (created through the command)."""
        flags = [f"--{k}={v}" for k, v in options.items()]
        return int(self("workspace", "create", "--name", "CLI test", *flags).json["id"])


def _with_database(url: str, name: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(scope="module")
def cli(settings: Settings) -> Iterator[Cli]:
    """The command on fresh databases named after this process, migrated by `linkpulse migrate`
    and dropped afterwards."""
    devstack_clickhouse.ensure(settings)
    name = f"lp_cli_test_{os.getpid()}"
    env = {
        "DATABASE_URL": _with_database(settings.database_url, name),
        "CLICKHOUSE_URL": _with_database(settings.clickhouse_url, name),
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    command = Cli(env, env["DATABASE_URL"])
    try:
        in_thread(drop_databases(env["DATABASE_URL"], env["CLICKHOUSE_URL"]))
        assert command("migrate").status == 0
        yield command
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        in_thread(drop_databases(env["DATABASE_URL"], env["CLICKHOUSE_URL"]))
