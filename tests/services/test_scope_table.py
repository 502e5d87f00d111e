"""The README's route → scope table is the one the protos declare (and the interceptor enforces)."""

from __future__ import annotations

import re

from services.config import ROOT
from services.contract.compiled import contract
from services.contract.scope_table import scope_table


def test_readme_holds_the_table_of_the_protos() -> None:
    readme = (ROOT / "README.md").read_text()
    found = re.search(r"<!-- scope-table:begin -->\n(.*?)\n<!-- scope-table:end -->", readme, re.S)
    assert found, "README.md lost its scope-table markers"
    assert found.group(1) == scope_table(), (
        "run `python -m services.contract.scope_table` into README"
    )


def test_every_rpc_is_public_or_names_a_scope() -> None:
    for method, policy in contract().policies.items():
        assert policy.public or policy.scope, f"{method} declares neither a scope nor public"
