"""Migration files: SQL files and Python scripts of each store, in version order."""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from services.stores.clickhouse import ClickHouse

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


# A ClickHouse migration written in Python (a `.py` file's `apply`), for what SQL alone cannot
# say idempotently on every server version, such as converting tables that hold data.
Script = Callable[[ClickHouse], Awaitable[None]]


@dataclass(frozen=True)
class Migration:
    """One SQL file (or Python script): version (its numeric prefix), name, statements."""

    version: int
    name: str
    sql: str
    script: Script | None = None

    def statements(self) -> list[str]:
        """Statements split on `;` at line ends (ClickHouse runs one statement per call)."""
        body = "\n".join(
            line for line in self.sql.splitlines() if not line.lstrip().startswith("--")
        )
        return [s.strip() for s in re.split(r";\s*$", body, flags=re.M) if s.strip()]


def load(store: str) -> list[Migration]:
    """Migrations of one store ('postgres' or 'clickhouse'), in version order."""
    found = []
    for path in sorted((MIGRATIONS / store).iterdir()):
        if path.suffix not in (".sql", ".py") or not path.name[:1].isdigit():
            continue
        version = int(path.name.split("_", 1)[0])
        if path.suffix == ".sql":
            found.append(Migration(version, path.stem, path.read_text()))
        else:
            found.append(Migration(version, path.stem, "", _script(path)))
    return sorted(found, key=lambda m: m.version)


def _script(path: Path) -> Script:
    """The `apply` coroutine function of a Python migration file."""
    spec = importlib.util.spec_from_file_location(f"linkpulse_migration_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load migration {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    apply: Script = module.apply
    return apply


# Where the ClickHouse migrations applied are recorded (per node in a cluster: never replicated).
MIGRATION_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_migrations (version UInt32, name String,"
    " applied_at DateTime DEFAULT now()) ENGINE = MergeTree() ORDER BY version"
)
