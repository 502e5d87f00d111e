"""Every failure is one JSON line on stderr with the code and exit status of its class."""

from __future__ import annotations

import pytest

from services.cli import errors
from tests.ports import free_port
from tests.services.cli.conftest import Cli


def test_the_classes_have_distinct_codes_and_exit_statuses() -> None:
    assert len({c.code for c in errors.CLASSES}) == len({c.exit_status for c in errors.CLASSES})
    assert len({c.exit_status for c in errors.CLASSES}) == len(errors.CLASSES)
    assert errors.AUDIT_BROKEN_EXIT not in {c.exit_status for c in errors.CLASSES}


@pytest.mark.parametrize(
    "args",
    [
        ("apikey",),  # a sub-command is missing
        ("apikey", "bogus"),
        ("apikey", "revoke"),  # --id is required
        ("apikey", "revoke", "--id", "seven"),
        ("link", "list", "--limit", "0"),
        ("embed", "create", "--workspace", "1", "--ttl", "soon"),
    ],
)
def test_usage_errors_are_bad_input(cli: Cli, args: tuple[str, ...]) -> None:
    done = cli(*args)
    assert done.status == errors.BAD_INPUT.exit_status == 2
    error = done.error
    assert error["code"] == "bad_input" and error["usage"].startswith("usage: linkpulse")


def test_not_found_is_the_same_for_an_api_key_an_embed_token_and_a_session(cli: Cli) -> None:
    seen = {}
    for group in ("apikey", "embed", "session"):
        done = cli(group, "revoke", "--id", "987654")
        assert done.status == errors.NOT_FOUND.exit_status == 4, done.err
        seen[group] = done.error
    assert {e["code"] for e in seen.values()} == {"not_found"}
    assert seen["apikey"]["message"] == "API key 987654 not found"
    assert seen["embed"]["message"] == "embed token 987654 not found"
    assert seen["session"]["message"] == "session 987654 not found"


@pytest.mark.parametrize(
    "args",
    [
        ("workspace", "show", "987654"),
        ("apikey", "show", "987654"),
        ("link", "show", "987654"),
        ("embed", "show", "987654"),
        ("export", "show", "exp_missing"),
        ("batch", "show", "bat_missing"),
        ("export", "list", "--after", "exp_missing"),
        ("apikey", "create", "--workspace", "987654"),
        ("link", "create", "--workspace", "987654", "--slug", "s", "--url", "https://e.x"),
        ("workspace", "plan", "--workspace", "987654", "--plan", "pro"),
        ("session", "create", "--workspace", "987654", "--email", "a@b.c"),
        ("workspace", "create", "--name", "N", "--organization", "987654"),
        ("audit", "verify", "--workspace", "987654"),
        ("embed", "create", "--workspace", "987654"),
    ],
)
def test_missing_things_are_not_found(cli: Cli, args: tuple[str, ...]) -> None:
    done = cli(*args)
    assert done.status == 4, (done.out, done.err)
    error = done.error
    assert error["code"] == "not_found"
    assert "987654" in error["message"] or "_missing not found" in error["message"]


def test_revoking_twice_is_not_an_error(cli: Cli) -> None:
    workspace = cli.workspace()
    key = cli("apikey", "create", "--workspace", str(workspace)).json
    first = cli("apikey", "revoke", "--id", str(key["id"])).json
    again = cli("apikey", "revoke", "--id", str(key["id"])).json
    assert first["revoked"] is True and first["revoked_at"]
    assert again["revoked"] is False and again["revoked_at"] == first["revoked_at"]
    token = cli("embed", "create", "--workspace", str(workspace)).json
    assert cli("embed", "revoke", "--id", str(token["id"])).json["revoked_at"]
    assert cli("embed", "revoke", "--id", str(token["id"])).json["revoked_at"]


def test_a_duplicate_slug_is_a_conflict_naming_slug_and_domain(cli: Cli) -> None:
    workspace = cli.workspace()
    slug = f"dup-{workspace}"
    args = ("link", "create", "--workspace", str(workspace), "--slug", slug)
    made = cli(*args, "--domain", "Go.Example", "--url", "https://example.com/a").json
    assert made["domain"] == "go.example" and made["slug"] == slug
    # From another workspace too: the slug is taken on the domain whoever owns it.
    other = cli.workspace()
    for owner in (workspace, other):
        done = cli(
            "link", "create", "--workspace", str(owner), "--slug", slug,
            "--domain", "go.example", "--url", "https://example.com/b", "--campaign", "Spring",
        )  # fmt: skip
        assert done.status == errors.CONFLICT.exit_status == 5
        error = done.error
        assert error == {
            "code": "conflict",
            "message": f"slug '{slug}' already exists on domain 'go.example' "
            f"(link {made['id']} of workspace {workspace})",
            "field": "slug",
        }
        assert "duplicate key" not in done.err
    # Nothing of the refused link was written (its campaign neither); another domain is free.
    assert cli.sql("SELECT 1 FROM campaigns WHERE workspace_id = $1", other) == []
    assert cli(*args, "--domain", "other.example", "--url", "https://example.com/c").status == 0


def test_stores_down_are_unavailable(cli: Cli) -> None:
    down = f"postgresql://postgres@127.0.0.1:{free_port()}/linkpulse"
    done = cli.process("workspace", "list", DATABASE_URL=down)
    assert done.status == errors.UNAVAILABLE.exit_status == 6
    error = done.error
    assert error["code"] == "unavailable" and "unreachable" in error["message"]


def test_clickhouse_down_is_unavailable_in_one_line(cli: Cli) -> None:
    down = f"clickhouse://default@127.0.0.1:{free_port()}/linkpulse"
    done = cli.process("migrate", CLICKHOUSE_URL=down)
    assert done.status == 6
    error = done.error  # the only line: no library traceback around it
    assert error["code"] == "unavailable" and "ClickHouse is unreachable" in error["message"]


def test_any_other_failure_is_an_error(cli: Cli) -> None:
    done = cli("stack", "clickhouse", "--stop-node", "ch1")
    assert done.status == errors.OTHER.exit_status == 1
    assert done.error == {
        "code": "error",
        "message": "DevstackError: --stop-node and --start-node go with --cluster",
    }


def test_the_console_script_reports_like_main(cli: Cli) -> None:
    done = cli.process("apikey", "revoke", "--id", "987654")
    assert done.status == 4
    assert done.error == {"code": "not_found", "message": "API key 987654 not found"}
    usage = cli.process("link", "create", "--slug", "x")
    assert usage.status == 2 and usage.error["code"] == "bad_input"


def test_version_is_the_package_version(cli: Cli) -> None:
    from importlib.metadata import version

    done = cli.process("--version")
    assert done.status == 0 and done.out.strip() == f"linkpulse {version('linkpulse')}"


def test_help_lists_every_exit_status(cli: Cli) -> None:
    done = cli.process("--help")
    assert done.status == 0
    for kind in errors.CLASSES:
        assert f"  {kind.exit_status}  {kind.code}: {kind.meaning}" in done.out
