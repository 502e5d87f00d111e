"""`linkpulse demo` says what it did; --clicks on an existing demo is refused, not ignored."""

from __future__ import annotations

from tests.services.cli.conftest import Cli


def _keys(cli: Cli, workspace: int) -> int:
    rows = cli.sql("SELECT count(*) AS n FROM api_keys WHERE workspace_id = $1", workspace)
    return int(rows[0]["n"])


def test_demo_loads_reuses_refuses_and_resets(cli: Cli) -> None:
    first = cli("demo", "--clicks", "300", "--days", "3").json
    demo = first["workspace_id"]
    assert first["loaded"] is True and first["created"] is True and first["clicks"] == 300
    assert first["api_key_minted"] is True and first["api_key"].startswith("lp_")
    assert first["replaced_workspace_id"] is None and _keys(cli, demo) == 1

    # Asked for other events without --reset: refused, nothing minted.
    for args in (("--clicks", "500"), ("--days", "5")):
        done = cli("demo", *args)
        assert done.status == 5, done.err
        error = done.error
        assert error["code"] == "conflict" and error["field"] == "clicks"
        assert "--reset" in error["message"] and f"--workspace {demo}" in error["message"]
    assert _keys(cli, demo) == 1

    # No options (what `make up` runs): reused as it is, with a new key, nothing reloaded.
    again = cli("demo").json
    assert (again["workspace_id"], again["loaded"], again["created"]) == (demo, False, False)
    assert again["clicks"] == 300 and again["api_key_minted"] is True
    assert again["api_key"] != first["api_key"] and _keys(cli, demo) == 2

    # Reused explicitly, without a key.
    quiet = cli("demo", "--workspace", str(demo), "--no-key").json
    assert (quiet["workspace_id"], quiet["loaded"], quiet["api_key_minted"]) == (demo, False, False)
    assert "api_key" not in quiet and _keys(cli, demo) == 2

    missing = cli("demo", "--workspace", str(demo + 1000))
    assert missing.status == 4
    assert missing.error["message"] == (
        f"workspace {demo + 1000} is not the demo workspace (it is workspace {demo})"
    )
    for args in (("--clicks", "5"), ("--reset",)):
        done = cli("demo", "--workspace", str(demo), *args)
        assert done.status == 2 and done.error["code"] == "bad_input"
    refused = cli("demo", "--reset", "--clicks", "-1")
    assert refused.status == 2 and refused.error["field"] == "clicks"

    reset = cli("demo", "--reset", "--clicks", "200", "--days", "2").json
    assert reset["loaded"] is True and reset["clicks"] == 200
    assert reset["workspace_id"] != demo and reset["replaced_workspace_id"] == demo
    assert cli("workspace", "show", str(demo)).status == 4
